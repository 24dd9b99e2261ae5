from django.db.models.signals import post_save
from django.dispatch import receiver
from pizza.models import Order

from botdialogs import background


@receiver(post_save, sender=Order)
def tell_the_customer(sender, instance: Order, created: bool, **kwargs) -> None:
    """The customer's dialog shows the new status (sent after the transaction commits)."""
    if not created:
        background.update(
            "default",
            instance.telegram_user_id,
            instance.telegram_chat_id,
            {"status": instance.status},
        )
