"""The Bot API methods of payments in Telegram Stars, as local Telegram emulates them.

``sendInvoice`` (Stars only: currency XTR, an empty provider token, one positive price;
:mod:`.botapi` sends the message, this module checks and stores the invoice),
``answerPreCheckoutQuery`` (once, within :data:`PRE_CHECKOUT_DEADLINE` seconds) and
``refundStarPayment`` (a known charge, once: CHARGE_ALREADY_REFUNDED the second time).
The user's side (pressing Pay) is :mod:`.payments`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from botdialogs.localtg.errors import BotApiError
from botdialogs.localtg.models import LocalBot, LocalInvoice, LocalMessage

#: Seconds Telegram gives a bot to answer a pre_checkout_query.
PRE_CHECKOUT_DEADLINE = 10.0
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"


def pay_markup(amount: int) -> dict[str, Any]:
    """The invoice's keyboard: Telegram's Pay button."""
    return {"inline_keyboard": [[{"text": f"Pay ⭐️{amount}", "pay": True}]]}


def checked_invoice(params: Mapping[str, Any]) -> dict[str, Any]:
    """sendInvoice's title, description, payload and amount, checked as Telegram does."""
    if str(params.get("currency") or "") != "XTR":
        raise BotApiError(400, "Bad Request: local Telegram emulates payments in Stars (XTR) only")
    if params.get("provider_token"):
        raise BotApiError(400, "Bad Request: PAYMENT_PROVIDER_INVALID")
    title, description = str(params.get("title") or ""), str(params.get("description") or "")
    payload = str(params.get("payload") or "")
    if not 1 <= len(title) <= 32:
        raise BotApiError(400, "Bad Request: TITLE_INVALID")
    if not 1 <= len(description) <= 255:
        raise BotApiError(400, "Bad Request: DESCRIPTION_INVALID")
    if not 1 <= len(payload.encode()) <= 128:
        raise BotApiError(400, "Bad Request: INVOICE_PAYLOAD_INVALID")
    prices = params.get("prices")
    if not isinstance(prices, list) or len(prices) != 1 or not isinstance(prices[0], dict):
        raise BotApiError(400, "Bad Request: STARS_INVOICE_INVALID")
    amount = prices[0].get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise BotApiError(400, "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID")
    return {"title": title, "description": description, "payload": payload, "amount": amount}


def store_invoice(bot: LocalBot, sent: dict[str, Any], invoice: dict[str, Any]) -> dict[str, Any]:
    """Keep the invoice of the message ``sent``; returns the Message with its Invoice."""
    message = LocalMessage.objects.get(
        chat__bot=bot, chat__chat_id=sent["chat"]["id"], message_id=sent["message_id"]
    )
    LocalInvoice.objects.create(message=message, **invoice)
    return {
        **sent,
        "invoice": invoice_json(invoice["title"], invoice["description"], invoice["amount"]),
    }


def invoice_json(title: str, description: str, amount: int) -> dict[str, Any]:
    """Telegram's Invoice object."""
    return {
        "title": title,
        "description": description,
        "start_parameter": "",
        "currency": "XTR",
        "total_amount": amount,
    }


def answer_pre_checkout_query(
    bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]
) -> Any:
    """answerPreCheckoutQuery: once, before the deadline."""
    query_id = str(params.get("pre_checkout_query_id") or "")
    invoice = (
        LocalInvoice.objects.select_for_update()
        .filter(message__chat__bot=bot, pre_checkout_query_id=query_id)
        .first()
        if query_id
        else None
    )
    if invoice is None or invoice.answered_ok is not None or invoice.asked_at is None:
        raise BotApiError(400, QUERY_INVALID)
    if (timezone.now() - invoice.asked_at).total_seconds() > PRE_CHECKOUT_DEADLINE:
        raise BotApiError(400, QUERY_INVALID)
    ok = params.get("ok") in (True, "true", "True", "1", 1)
    error = str(params.get("error_message") or "")
    if not ok and not error:
        raise BotApiError(400, "Bad Request: ERROR_MESSAGE_EMPTY")
    invoice.answered_ok, invoice.error_message = ok, "" if ok else error
    invoice.save(update_fields=["answered_ok", "error_message"])
    return True


def refund_star_payment(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """refundStarPayment: a known charge of this user, once."""
    try:
        user_id = int(params["user_id"])
    except (KeyError, TypeError, ValueError):
        raise BotApiError(400, "Bad Request: invalid user_id specified") from None
    charge_id = str(params.get("telegram_payment_charge_id") or "")
    invoice = (
        LocalInvoice.objects.select_for_update()
        .filter(message__chat__bot=bot, message__chat__chat_id=user_id, charge_id=charge_id)
        .first()
        if charge_id
        else None
    )
    if invoice is None:
        raise BotApiError(400, "Bad Request: CHARGE_NOT_FOUND")
    if invoice.refunded_at is not None:
        raise BotApiError(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
    invoice.refunded_at = timezone.now()
    invoice.save(update_fields=["refunded_at"])
    return True
