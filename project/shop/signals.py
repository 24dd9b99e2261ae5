"""Keep the bot in step with the shop: an order's new status reaches its customer's chat."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_init, post_save

from botdialogs import background
from project.bot.states import OrderStatus
from project.shop.models import Order


def remember_status(sender: type[Order], instance: Order, **kwargs: Any) -> None:
    """Note the status an order was loaded with, to see whether a save changed it."""
    instance._loaded_status = instance.status  # type: ignore[attr-defined]


def status_changed(sender: type[Order], instance: Order, created: bool, **kwargs: Any) -> None:
    """Update the order-status dialog of the order's chat (after the save commits).

    A chat looking at its orders sees them change in place; any other chat gets the
    order-status dialog on top of what it has open.
    """
    if created or instance.status == getattr(instance, "_loaded_status", instance.status):
        return
    instance._loaded_status = instance.status  # type: ignore[attr-defined]
    user_id, chat_id = instance.telegram_user_id, instance.telegram_chat_id
    shown = background.current(instance.bot_name, user_id, chat_id)
    if shown is not None and shown.shows(OrderStatus):
        background.update(instance.bot_name, user_id, chat_id, {"order": instance.pk})
    else:
        background.start(instance.bot_name, user_id, chat_id, OrderStatus.orders, show_mode="send")


def connect() -> None:
    """Wire the signals (from ShopConfig.ready())."""
    post_init.connect(remember_status, sender=Order, dispatch_uid="shop.remember_status")
    post_save.connect(status_changed, sender=Order, dispatch_uid="shop.status_changed")
