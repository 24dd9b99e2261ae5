"""Paying an invoice in local Telegram, as the user's Telegram app does.

:func:`pay_invoice` presses Pay: the bot gets a ``pre_checkout_query`` and has
:data:`~.invoices.PRE_CHECKOUT_DEADLINE` seconds to answer it (in its webhook response or
with answerPreCheckoutQuery), as in Telegram; on ok the charge gets a fresh id and the
user's ``successful_payment`` message is delivered; no answer in time fails the payment.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from botdialogs.localtg import delivery
from botdialogs.localtg.accounts import local_bot
from botdialogs.localtg.chats import ChatError, next_update_id
from botdialogs.localtg.invoices import PRE_CHECKOUT_DEADLINE
from botdialogs.localtg.models import LocalChat, LocalInvoice, LocalMessage
from botdialogs.localtg.objects import message_json, user_json
from botdialogs.localtg.revisions import bump


@dataclass(frozen=True)
class PaymentOutcome:
    """What pressing Pay did: paid (with the charge id), refused (the bot's text) or timed out."""

    paid: bool
    charge_id: str = ""
    error_message: str = ""


def _ask(bot_name: str, chat_id: int, message_id: int | None) -> tuple[int, dict[str, Any]]:
    with transaction.atomic():
        bot = local_bot(bot_name)
        invoices = LocalInvoice.objects.select_for_update().select_related("message__chat")
        invoices = invoices.filter(message__chat__bot=bot, message__chat__chat_id=chat_id)
        if message_id is None:
            invoices = invoices.filter(paid_at=None).order_by("-message__message_id")
        else:
            invoices = invoices.filter(message__message_id=message_id)
        invoice = invoices.first()
        if invoice is None:
            raise ChatError(f"No invoice in message {message_id} of chat {chat_id}")
        if invoice.paid_at is not None:
            raise ChatError("This invoice is paid already")
        invoice.pre_checkout_query_id = f"LTPC{secrets.token_hex(10)}"
        invoice.asked_at, invoice.answered_ok, invoice.error_message = timezone.now(), None, ""
        invoice.save(
            update_fields=["pre_checkout_query_id", "asked_at", "answered_ok", "error_message"]
        )
        query = {
            "id": invoice.pre_checkout_query_id,
            "from": user_json(invoice.message.chat),
            "currency": "XTR",
            "total_amount": invoice.amount,
            "invoice_payload": invoice.payload,
        }
        return invoice.pk, {"update_id": next_update_id(bot), "pre_checkout_query": query}


def _answer(invoice_pk: int, expire: bool) -> LocalInvoice:
    with transaction.atomic():
        invoice = LocalInvoice.objects.select_for_update().get(pk=invoice_pk)
        if expire and invoice.answered_ok is None:
            invoice.asked_at = None  # a late answer is refused
            invoice.save(update_fields=["asked_at"])
        return invoice


def _paid(invoice_pk: int) -> dict[str, Any]:
    with transaction.atomic():
        invoice = (
            LocalInvoice.objects.select_for_update()
            .select_related("message__chat")
            .get(pk=invoice_pk)
        )
        invoice.charge_id = f"LTSP{secrets.token_hex(12)}"
        invoice.paid_at = timezone.now()
        invoice.save(update_fields=["charge_id", "paid_at"])
        chat: LocalChat = LocalChat.objects.select_for_update().get(pk=invoice.message.chat_id)
        message_id = chat.take_message_id()
        message = LocalMessage.objects.create(
            chat=chat,
            message_id=message_id,
            text=f"Paid ⭐️{invoice.amount} for {invoice.title}",
            revision=bump(chat),
        )
        shown = message_json(message)
        shown.pop("text", None)  # a service message: successful_payment instead of a text
        shown["successful_payment"] = {
            "currency": "XTR",
            "total_amount": invoice.amount,
            "invoice_payload": invoice.payload,
            "telegram_payment_charge_id": invoice.charge_id,
            "provider_payment_charge_id": "",
        }
        return {"update_id": next_update_id(chat.bot), "message": shown}


async def pay_invoice(bot_name: str, chat_id: int, message_id: int | None) -> PaymentOutcome:
    """The user presses Pay on the invoice in ``message_id``: pre-checkout, then payment."""
    invoice_pk, update = await sync_to_async(_ask)(bot_name, chat_id, message_id)
    await delivery.deliver(bot_name, update)
    deadline = asyncio.get_running_loop().time() + PRE_CHECKOUT_DEADLINE
    while True:
        # The answer rode in the webhook response (carried out above) or comes as a call.
        last = asyncio.get_running_loop().time() >= deadline
        invoice = await sync_to_async(_answer)(invoice_pk, expire=last)
        if invoice.answered_ok is not None or last:
            break
        await asyncio.sleep(0.05)
    if not invoice.answered_ok:
        return PaymentOutcome(paid=False, error_message=invoice.error_message or "timed out")
    paid = await sync_to_async(_paid)(invoice_pk)
    await delivery.deliver(bot_name, paid)
    return PaymentOutcome(
        paid=True, charge_id=paid["message"]["successful_payment"]["telegram_payment_charge_id"]
    )
