"""Stars payments through process_update (the webhook's path) with a recording Bot API:
invoices, pre-checkout answers, payments recorded once with the site's change, refunds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError
from aiogram.methods import AnswerPreCheckoutQuery, RefundStarPayment, SendInvoice
from aiogram.types import Chat, Message
from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.db.models import F
from django.test import override_settings

from botdialogs.engine import bots
from botdialogs.http.webhook import process_update
from botdialogs.models import StarPayment
from botdialogs.payments import (
    BadInvoice,
    ReceivedPayment,
    RefundRefused,
    RowsUpdate,
    StarsInvoice,
    refund_star_payment,
    send_stars_invoice,
)
from botdialogs.payments.middleware import HOOK_FAILED
from botdialogs.testing import RecordingSession, recording_bots
from botdialogs.testing.updates import next_message_id, next_update_id, user
from project.shop.models import Order

pytestmark = pytest.mark.django_db(transaction=True)

USER = 7300
HERE = "tests.payments.test_payments"
SETTINGS = {
    "BOTS": {"default": {"ROUTER": f"{HERE}.payments_router"}},
    "PAYMENT_PRE_CHECKOUT": f"{HERE}.check",
    "PAYMENT_RECEIVED": f"{HERE}.add_paid",
}
handled: list[str] = []
#: The bot's handler fails on payments of this many Stars.
BUGGY = 13


def payments_router() -> Router:
    """The bot's own handler sees the payment after botdialogs recorded it."""
    router = Router()

    @router.message()
    async def on_message(message: Message) -> None:
        handled.append(message.successful_payment.telegram_payment_charge_id)  # type: ignore[union-attr]
        if message.successful_payment and message.successful_payment.total_amount == BUGGY:
            raise RuntimeError("the bot's own bug")

    return router


def check(query: Any) -> str | None:
    if query.invoice_payload == "boom":
        raise ValueError("the site's bug")
    order = Order.objects.filter(pk=int(query.invoice_payload)).first()
    if order is None:
        return "No such order."
    if query.total_amount != order.price_in_stars:
        return "The price changed."
    return None


failing: list[BaseException] = []


def add_paid(payment: ReceivedPayment) -> list[RowsUpdate]:
    if failing:
        raise failing.pop()
    # Adds (not sets) the amount: a second application would show as twice the amount.
    return [
        RowsUpdate(
            Order.objects.filter(pk=int(payment.invoice_payload)),
            {"paid_stars": F("paid_stars") + payment.total_amount},
        )
    ]


class PaymentsSession(RecordingSession):
    """Also answers the payment methods; ``refund_errors`` are raised by refunds first."""

    def __init__(self) -> None:
        super().__init__()
        self.refund_errors: list[Exception] = []

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:
        if isinstance(method, SendInvoice):
            self.calls.append(method)
            return Message(
                message_id=next_message_id(),
                date=0,  # type: ignore[arg-type]
                chat=Chat(id=int(method.chat_id), type="private"),
            )
        if isinstance(method, AnswerPreCheckoutQuery | RefundStarPayment):
            self.calls.append(method)
            if isinstance(method, RefundStarPayment) and self.refund_errors:
                raise self.refund_errors.pop(0)
            return True
        return await super().make_request(bot, method, timeout)

    def of(self, kind: type) -> list[Any]:
        return [call for call in self.calls if isinstance(call, kind)]


@pytest.fixture
def session() -> Iterator[PaymentsSession]:
    handled.clear()
    failing.clear()
    with override_settings(BOTDIALOGS=SETTINGS), recording_bots(PaymentsSession()) as recording:
        assert isinstance(recording, PaymentsSession)
        yield recording


@pytest.fixture(autouse=True)
async def close_connections() -> AsyncIterator[None]:
    yield
    await bots.get_storage().close()  # this loop's PostgreSQL connections


def order(items: int = 3) -> Order:
    return Order.objects.create(telegram_user_id=USER, telegram_chat_id=USER, items={"Tea": items})


def paid_update(payload: str, amount: int, charge: str, update_id: int | None = None) -> Any:
    return {
        "update_id": next_update_id() if update_id is None else update_id,
        "message": {
            "message_id": next_message_id(),
            "date": int(time.time()),
            "chat": {"id": USER, "type": "private", "first_name": "Ann"},
            "from": user(USER),
            "successful_payment": {
                "currency": "XTR",
                "total_amount": amount,
                "invoice_payload": payload,
                "telegram_payment_charge_id": charge,
                "provider_payment_charge_id": "",
            },
        },
    }


def pre_checkout_update(payload: str, amount: int) -> Any:
    return {
        "update_id": next_update_id(),
        "pre_checkout_query": {
            "id": f"q{next_update_id()}",
            "from": user(USER),
            "currency": "XTR",
            "total_amount": amount,
            "invoice_payload": payload,
        },
    }


async def feed(update: dict[str, Any]) -> dict[str, Any] | None:
    async with bots.bot_scope():
        return await process_update("default", update)


# -- invoices -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("title", "description", "payload", "amount", "says"),
    [
        ("", "d", "p", 1, "title"),
        ("t" * 33, "d", "p", 1, "title"),
        ("t", "", "p", 1, "description"),
        ("t", "d", "", 1, "payload"),
        ("t", "d", "é" * 65, 1, "payload"),
        ("t", "d", "p", 0, "amount"),
        ("t", "d", "p", 1.5, "amount"),
    ],
)
async def test_an_invoice_telegram_would_refuse_is_refused_before_any_call(
    session: PaymentsSession, title: str, description: str, payload: str, amount: Any, says: str
) -> None:
    async with bots.bot_scope():
        with pytest.raises(BadInvoice, match=says):
            await send_stars_invoice(
                bots.get_bot("default"), USER, title, description, payload, amount
            )
    assert session.of(SendInvoice) == []


async def test_a_stars_invoice_is_sent_in_xtr_without_a_provider_token(
    session: PaymentsSession,
) -> None:
    async with bots.bot_scope():
        await StarsInvoice("Order #1", "3 x Tea", "order:1", 3).send(bots.get_bot("default"), USER)
    [sent] = session.of(SendInvoice)
    assert (sent.currency, sent.provider_token, sent.payload) == ("XTR", "", "order:1")
    assert [(price.label, price.amount) for price in sent.prices] == [("Order #1", 3)]


# -- pre-checkout ---------------------------------------------------------------------------
async def test_pre_checkout_is_answered_in_the_webhook_response_by_the_site_hook(
    session: PaymentsSession,
) -> None:
    placed = await sync_to_async(order)(3)
    good = await feed(pre_checkout_update(str(placed.pk), 3))
    changed = await feed(pre_checkout_update(str(placed.pk), 2))
    unknown = await feed(pre_checkout_update(str(placed.pk + 1000), 3))
    bug = await feed(pre_checkout_update("boom", 3))

    assert good is not None and good["method"] == "answerPreCheckoutQuery"
    assert (good["ok"], good.get("error_message")) == (True, None)
    assert changed is not None and (changed["ok"], changed["error_message"]) == (
        False,
        "The price changed.",
    )
    assert unknown is not None and unknown["error_message"] == "No such order."
    assert bug is not None and (bug["ok"], bug["error_message"]) == (False, HOOK_FAILED)
    assert session.of(AnswerPreCheckoutQuery) == []  # every answer rode in the response


# -- successful payments --------------------------------------------------------------------
async def test_a_payment_is_recorded_once_with_the_site_change_however_often_it_comes(
    session: PaymentsSession,
) -> None:
    placed = await sync_to_async(order)(3)
    first = paid_update(str(placed.pk), 3, "charge-1")
    await feed(first)
    await feed(first)  # the same update redelivered
    await feed(paid_update(str(placed.pk), 3, "charge-1"))  # the same charge in a new update

    payments = [p async for p in StarPayment.objects.all()]
    await placed.arefresh_from_db()
    assert [(p.telegram_payment_charge_id, p.total_amount, p.status) for p in payments] == [
        ("charge-1", 3, "paid")
    ]
    assert payments[0].successful_payment["invoice_payload"] == str(placed.pk)
    assert placed.paid_stars == 3
    # The bot's handlers see every new update (the redelivered one is not handled again).
    assert handled == ["charge-1", "charge-1"]


async def test_a_second_charge_for_the_same_order_is_a_second_payment(
    session: PaymentsSession,
) -> None:
    placed = await sync_to_async(order)(2)
    await feed(paid_update(str(placed.pk), 2, "charge-a"))
    await feed(paid_update(str(placed.pk), 2, "charge-b"))
    await placed.arefresh_from_db()
    assert await StarPayment.objects.acount() == 2
    assert placed.paid_stars == 4


async def test_a_bug_in_the_bots_handler_loses_no_payment(session: PaymentsSession) -> None:
    placed = await sync_to_async(order)(BUGGY)
    await feed(paid_update(str(placed.pk), BUGGY, "charge-bug"))
    await placed.arefresh_from_db()
    assert handled == ["charge-bug"]
    assert [p.telegram_payment_charge_id async for p in StarPayment.objects.all()] == ["charge-bug"]
    assert placed.paid_stars == BUGGY


async def test_a_bug_in_the_site_hook_still_records_the_payment(
    session: PaymentsSession, caplog: pytest.LogCaptureFixture
) -> None:
    await feed(paid_update("not-an-order", 5, "charge-hook"))
    payment = await StarPayment.objects.aget()
    assert (payment.invoice_payload, payment.status) == ("not-an-order", "paid")
    assert "PAYMENT_RECEIVED" in caplog.text


async def test_a_passing_failure_records_nothing_and_the_redelivery_records_it(
    session: PaymentsSession,
) -> None:
    placed = await sync_to_async(order)(3)
    update = paid_update(str(placed.pk), 3, "charge-retry")
    failing.append(OperationalError("the database went away"))
    with pytest.raises(OperationalError):
        await feed(update)
    assert await StarPayment.objects.acount() == 0

    await feed(update)  # Telegram delivers it again
    await placed.arefresh_from_db()
    assert await StarPayment.objects.acount() == 1
    assert placed.paid_stars == 3


# -- refunds --------------------------------------------------------------------------------
async def paid(session: PaymentsSession, charge: str = "charge-r") -> StarPayment:
    placed = await sync_to_async(order)(2)
    await feed(paid_update(str(placed.pk), 2, charge))
    return await StarPayment.objects.aget(telegram_payment_charge_id=charge)


async def refund(payment: StarPayment, again: bool = False) -> StarPayment:
    async with bots.bot_scope():
        return await refund_star_payment(bots.get_bot("default"), payment.pk, again=again)


async def test_a_refund_asks_telegram_once_and_stores_the_outcome(
    session: PaymentsSession,
) -> None:
    payment = await paid(session)
    done = await refund(payment)
    with pytest.raises(RefundRefused):
        await refund(payment)  # the second click
    assert [(c.user_id, c.telegram_payment_charge_id) for c in session.of(RefundStarPayment)] == [
        (USER, "charge-r")
    ]
    stored = await StarPayment.objects.aget(pk=payment.pk)
    assert (done.status, stored.status, stored.refund_answer) == ("refunded", "refunded", "True")
    assert stored.refund_requested_at is not None and stored.refund_answered_at is not None


async def test_a_refund_telegram_refuses_is_stored_as_failed(session: PaymentsSession) -> None:
    payment = await paid(session)
    session.refund_errors.append(
        TelegramBadRequest(
            RefundStarPayment(user_id=USER, telegram_payment_charge_id="x"),
            "Bad Request: CHARGE_NOT_FOUND",
        )
    )
    done = await refund(payment)
    assert (done.status, done.refund_answer) == ("refund_failed", "Bad Request: CHARGE_NOT_FOUND")


async def test_an_unknown_refund_outcome_stays_requested_and_asking_again_resolves_it(
    session: PaymentsSession,
) -> None:
    payment = await paid(session)
    method = RefundStarPayment(user_id=USER, telegram_payment_charge_id="charge-r")
    session.refund_errors.extend(
        [
            TelegramNetworkError(method, "timed out"),
            TelegramBadRequest(method, "Bad Request: CHARGE_ALREADY_REFUNDED"),
        ]
    )
    lost = await refund(payment)
    assert lost.status == "refund_requested"
    with pytest.raises(RefundRefused):
        await refund(payment)  # a plain second click still asks nothing
    resolved = await refund(payment, again=True)
    assert resolved.status == "refunded"
    assert len(session.of(RefundStarPayment)) == 2
