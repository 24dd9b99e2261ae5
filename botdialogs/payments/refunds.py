"""Refunds of Stars payments: Telegram is asked at most once per click, never twice in effect.

:func:`start_refund` turns the payment ``refund_requested`` under a row lock and commits
*before* Telegram is asked, so a second click (or a second admin) finds it requested and
asks nothing. :func:`refund_star_payment` then calls ``refundStarPayment`` and stores the
outcome: ``refunded``, or ``refund_failed`` with Telegram's error. A passing failure
(network, 5xx: Telegram may or may not have refunded) leaves ``refund_requested`` with the
error, shown in the admin; asking again is then safe, because Telegram answers
``CHARGE_ALREADY_REFUNDED`` for a charge it refunded, which is stored as ``refunded``.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from botdialogs.exceptions import BotDialogsError, is_transient
from botdialogs.models import StarPayment

Status = StarPayment.Status
#: Telegram's description for a charge refunded before.
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


class RefundRefused(BotDialogsError):
    """The payment is not in a state that may be refunded (already requested or refunded)."""


def start_refund(payment_id: int, *, again: bool = False) -> StarPayment:
    """Mark the payment ``refund_requested`` and commit; raises :class:`RefundRefused`.

    A ``paid`` payment (or one whose refund failed) may be refunded; with ``again`` also
    one left ``refund_requested`` by an unknown outcome, to resolve it.
    """
    allowed = {Status.PAID, Status.REFUND_FAILED}
    if again:
        allowed.add(Status.REFUND_REQUESTED)
    with transaction.atomic():
        payment = StarPayment.objects.select_for_update().get(pk=payment_id)
        if payment.status not in allowed:
            raise RefundRefused(f"Payment {payment.pk} is {payment.get_status_display()}")
        payment.status = Status.REFUND_REQUESTED
        payment.refund_requested_at = timezone.now()
        payment.save(update_fields=["status", "refund_requested_at"])
    return payment


def store_outcome(payment: StarPayment, status: str, answer: str) -> None:
    """Store what Telegram answered to the refund of ``payment``."""
    payment.status = status
    payment.refund_answer = answer
    payment.refund_answered_at = timezone.now()
    payment.save(update_fields=["status", "refund_answer", "refund_answered_at"])


async def refund_star_payment(bot: Bot, payment_id: int, *, again: bool = False) -> StarPayment:
    """Refund payment ``payment_id`` through ``bot`` (its bot); returns it with the outcome.

    Raises :class:`RefundRefused` when it may not be refunded (nothing is asked then).
    """
    payment = await sync_to_async(start_refund)(payment_id, again=again)
    try:
        await bot.refund_star_payment(
            user_id=payment.user_id,
            telegram_payment_charge_id=payment.telegram_payment_charge_id,
        )
    except TelegramBadRequest as error:
        refunded = ALREADY_REFUNDED in error.message
        status = Status.REFUNDED if refunded else Status.REFUND_FAILED
        await sync_to_async(store_outcome)(payment, status, error.message)
        return payment
    except Exception as error:
        if not is_transient(error):
            await sync_to_async(store_outcome)(payment, Status.REFUND_FAILED, repr(error))
            raise
        # Telegram may have refunded: stays "requested", to be resolved by asking again.
        await sync_to_async(store_outcome)(payment, Status.REFUND_REQUESTED, repr(error))
        return payment
    await sync_to_async(store_outcome)(payment, Status.REFUNDED, "True")
    return payment
