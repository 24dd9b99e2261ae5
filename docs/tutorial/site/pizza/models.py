from django.db import models


class Order(models.Model):
    """A pizza ordered in the bot; the kitchen changes its status in the admin."""

    STATUSES = [("received", "received"), ("baking", "baking"), ("delivered", "delivered")]

    telegram_user_id = models.BigIntegerField()
    telegram_chat_id = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=STATUSES, default="received")

    def __str__(self) -> str:
        return f"Order {self.pk}: {self.status}"
