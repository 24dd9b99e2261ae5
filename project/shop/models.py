from django.db import models
from django.utils.translation import gettext_lazy as _


class Order(models.Model):
    """A food order placed through the demo bot."""

    class Status(models.TextChoices):
        PLACED = "placed", _("Placed")
        COOKING = "cooking", _("Cooking")
        ON_THE_WAY = "on_the_way", _("On the way")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled")

    bot_name = models.CharField("bot", max_length=64, default="default")
    telegram_user_id = models.BigIntegerField("Telegram user id", db_index=True)
    telegram_chat_id = models.BigIntegerField("Telegram chat id")
    items = models.JSONField(default=dict, help_text="Item name -> quantity.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLACED)
    created_at = models.DateTimeField("placed", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)
    paid_stars = models.PositiveIntegerField(
        "paid in Stars",
        default=0,
        help_text="Set once by the order's Stars payment (project.shop.payments).",
    )
    callback_query_id = models.CharField(
        "placed by press",
        max_length=64,
        null=True,
        blank=True,
        help_text="The Finish press that placed it: the same press delivered again (a retry "
        "after a failure) finds this order instead of placing a second one.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot_name", "callback_query_id"], name="shop_order_once_per_press"
            )
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk} ({self.get_status_display()})"

    @property
    def price_in_stars(self) -> int:
        """What the order costs: one Star per item."""
        return sum(self.items.values())

    def summary(self) -> str:
        """The items as one line, by name: '2 x Pizza, 1 x Soup' (the same on every database:
        PostgreSQL's jsonb keeps keys in its own order)."""
        return ", ".join(f"{qty} x {name}" for name, qty in sorted(self.items.items())) or "nothing"


class DailySpecial(models.Model):
    """One day's "Today's special" broadcast: at most one per day, however often it runs.

    The daily task (project.shop.tasks.send_daily_special) takes this row for the day, or
    finds it, then sends its broadcast; a broadcast resumes where it stopped and reaches
    each chat once, so a second run the same day (a second beat, a retry) sends nothing twice.
    """

    day = models.DateField(unique=True, help_text="UTC day of the special.")
    dish = models.CharField(max_length=64)
    broadcast = models.OneToOneField(
        "botdialogs.Broadcast", on_delete=models.PROTECT, related_name="daily_special"
    )
    runs = models.PositiveIntegerField(default=0, help_text="Runs of the task that day.")
    created_at = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ["-day"]
        verbose_name = "daily special"

    def __str__(self) -> str:
        return f"{self.day}: {self.dish}"
