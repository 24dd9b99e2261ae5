"""Telegram Stars payments in dialogs, exactly once.

Owns: invoices (:mod:`.invoices`), the pre-checkout answer and the recording middlewares
(:mod:`.middleware`, installed on every Dispatcher by the engine), the row that records a
payment once per charge id with the site's change (:mod:`.recording`) and refunds
(:mod:`.refunds`). The table is :class:`botdialogs.models.StarPayment`.
May import: :mod:`botdialogs.storage` and the core modules; the engine installs it.
"""

from botdialogs.payments.invoices import (
    STARS,
    BadInvoice,
    StarsInvoice,
    invoice_on_click,
    send_stars_invoice,
)
from botdialogs.payments.middleware import pre_checkout_answer
from botdialogs.payments.recording import ReceivedPayment, RowsUpdate
from botdialogs.payments.refunds import RefundRefused, refund_star_payment

__all__ = [
    "STARS",
    "BadInvoice",
    "ReceivedPayment",
    "RefundRefused",
    "RowsUpdate",
    "StarsInvoice",
    "invoice_on_click",
    "pre_checkout_answer",
    "refund_star_payment",
    "send_stars_invoice",
]
