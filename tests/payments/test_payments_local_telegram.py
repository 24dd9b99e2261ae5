"""The demo's food order paid in Stars through local Telegram and the real webhook, then
refunded from the admin: the demo site on uvicorn, its bot in inline mode."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse

from botdialogs.engine import bots
from botdialogs.engine.sync import call_async
from botdialogs.localtg.models import LocalInvoice
from botdialogs.models import StarPayment
from botdialogs.testing import AsgiServer, LocalTelegram
from project.shop.models import Order

pytestmark = pytest.mark.django_db(transaction=True)

USER = 9450


def order_and_pay(server: AsgiServer, user_id: int) -> tuple[Any, dict[str, Any]]:
    chat = LocalTelegram(server.url).chat(user_id, first_name="Pia")
    chat.send("/start")
    for press in ("Order food", "Yes", "+ Tea", "+ Tea", "Finish", "Pay in Stars"):
        chat.press(press)
    invoice = chat.wait_for(
        lambda message: message.text.startswith("Order #") and "\n" in message.text
    )
    assert (invoice.text.split("\n")[1], invoice.buttons) == ("2 x Tea", [["Pay ⭐️2"]])
    return chat, chat.pay(invoice.message_id)


def test_the_food_order_is_paid_in_stars_once_and_a_second_invoice_is_refused(
    inline_server: AsgiServer,
) -> None:
    chat, outcome = order_and_pay(inline_server, USER)

    order = Order.objects.get(telegram_user_id=USER)
    payment = StarPayment.objects.get()
    assert outcome["paid"] and outcome["charge_id"] == payment.telegram_payment_charge_id
    assert (payment.invoice_payload, payment.total_amount) == (f"order:{order.pk}", 2)
    assert order.paid_stars == 2

    # Another invoice for the paid order: the pre-checkout answer refuses it, nothing is paid.
    chat.press("Pay in Stars")
    again = chat.pay()
    assert (again["paid"], again["error_message"]) == (False, "This order is paid already.")
    assert StarPayment.objects.count() == 1


def refund_click(client: Client, payment: StarPayment) -> None:
    client.post(
        reverse("admin:botdialogs_starpayment_changelist"),
        {"action": "refund", "_selected_action": [payment.pk], "post": "yes"},
    )


def test_a_refund_clicked_twice_in_the_admin_refunds_once(inline_server: AsgiServer) -> None:
    order_and_pay(inline_server, USER + 1)
    payment = StarPayment.objects.get()
    admin = get_user_model().objects.create_superuser("boss", password="boss-pass-1")
    client = Client()
    client.force_login(admin)

    with override_settings(BOTDIALOGS={**_settings(), "LOCAL_TELEGRAM_URL": inline_server.url}):
        confirm = client.post(
            reverse("admin:botdialogs_starpayment_changelist"),
            {"action": "refund", "_selected_action": [payment.pk]},
        )
        assert b"gives back 2 XTR" in confirm.content  # it asks first
        refund_click(client, payment)
        refund_click(client, payment)  # the double click

        payment.refresh_from_db()
        assert (payment.status, payment.refund_answer) == ("refunded", "True")
        charge = LocalInvoice.objects.get(charge_id=payment.telegram_payment_charge_id)
        assert charge.refunded_at is not None
        # Local Telegram, like Telegram, refuses a second refund of the charge.
        with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
            call_async(_refund_again, payment)


async def _refund_again(payment: StarPayment) -> None:
    await bots.get_bot("default").refund_star_payment(
        user_id=payment.user_id, telegram_payment_charge_id=payment.telegram_payment_charge_id
    )


def _settings() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.BOTDIALOGS)
