"""The demo's food order paid in Telegram Stars: the site's two payment hooks.

``BOTDIALOGS["PAYMENT_PRE_CHECKOUT"]`` checks the order before Telegram takes the Stars;
``BOTDIALOGS["PAYMENT_RECEIVED"]`` marks it paid in the transaction that records the payment.
"""

from __future__ import annotations

from aiogram.types import PreCheckoutQuery
from django.utils.translation import gettext as _

from botdialogs.payments import STARS, ReceivedPayment, RowsUpdate, StarsInvoice
from project.shop.models import Order

PAYLOAD_PREFIX = "order:"


def order_invoice(order: Order) -> StarsInvoice:
    """The invoice for ``order``: its payload names it."""
    return StarsInvoice(
        title=_("Order #%(id)s") % {"id": order.pk},
        description=order.summary(),
        payload=f"{PAYLOAD_PREFIX}{order.pk}",
        amount=order.price_in_stars,
    )


def _order_id(payload: str) -> int | None:
    number = payload.removeprefix(PAYLOAD_PREFIX)
    return int(number) if payload.startswith(PAYLOAD_PREFIX) and number.isdigit() else None


def check_order(query: PreCheckoutQuery) -> str | None:
    """None when the order can be paid as invoiced, else why not (the buyer reads it)."""
    order_id = _order_id(query.invoice_payload)
    order = Order.objects.filter(pk=order_id).first() if order_id is not None else None
    if order is None:
        return _("This order does not exist.")
    if order.status == Order.Status.CANCELLED:
        return _("This order was cancelled.")
    if order.paid_stars:
        return _("This order is paid already.")
    if query.currency != STARS or query.total_amount != order.price_in_stars:
        return _("The price of this order has changed: please ask for a new invoice.")
    return None


def mark_paid(payment: ReceivedPayment) -> list[RowsUpdate]:
    """The order of ``payment`` becomes paid, with the payment (once per charge id)."""
    order_id = _order_id(payment.invoice_payload)
    if order_id is None:
        return []
    return [
        RowsUpdate(
            Order.objects.filter(pk=order_id, paid_stars=0),
            {"paid_stars": payment.total_amount},
        )
    ]
