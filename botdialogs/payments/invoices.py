"""Invoices in Telegram Stars: send one from a window, a node or any async code.

Telegram's rules for Stars (checked here, before the call, so a bad invoice fails with a
clear :class:`BadInvoice` instead of Telegram's 400): currency ``XTR``, an empty provider
token, one price with a positive whole amount of Stars, a payload of 1-128 bytes, a title
of 1-32 and a description of 1-255 characters.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.types import CallbackQuery, LabeledPrice, Message
from aiogram_dialog import DialogManager

from botdialogs.exceptions import BotDialogsError

#: Telegram's currency code of Stars.
STARS = "XTR"


class BadInvoice(BotDialogsError, ValueError):
    """An invoice Telegram would refuse (see the module docstring for the rules)."""


@dataclass(frozen=True)
class StarsInvoice:
    """What an invoice in Stars says; ``payload`` names the site's order (1-128 bytes)."""

    title: str
    description: str
    payload: str
    amount: int

    def check(self) -> None:
        """Raise :class:`BadInvoice` naming the first rule this invoice breaks."""
        if not 1 <= len(self.title) <= 32:
            raise BadInvoice(f"An invoice title has 1-32 characters, not {len(self.title)}")
        if not 1 <= len(self.description) <= 255:
            raise BadInvoice(
                f"An invoice description has 1-255 characters, not {len(self.description)}"
            )
        if not 1 <= len(self.payload.encode()) <= 128:
            raise BadInvoice("An invoice payload has 1-128 bytes of UTF-8")
        amount = self.amount
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise BadInvoice(f"An amount of Stars is a positive whole number, not {amount!r}")

    async def send(self, bot: Bot, chat_id: int | str, **options: Any) -> Message:
        """Send it to ``chat_id`` (``options`` go to ``sendInvoice`` as they are)."""
        self.check()
        return await bot.send_invoice(
            chat_id=chat_id,
            title=self.title,
            description=self.description,
            payload=self.payload,
            currency=STARS,
            prices=[LabeledPrice(label=self.title, amount=self.amount)],
            provider_token="",
            **options,
        )


async def send_stars_invoice(
    bot: Bot,
    chat_id: int | str,
    title: str,
    description: str,
    payload: str,
    amount: int,
    **options: Any,
) -> Message:
    """Send an invoice of ``amount`` Stars; raises :class:`BadInvoice` before any call."""
    invoice = StarsInvoice(title=title, description=description, payload=payload, amount=amount)
    return await invoice.send(bot, chat_id, **options)


#: Makes the invoice for the dialog that shows the button (may be async).
InvoiceFactory = Callable[[DialogManager], "StarsInvoice | Awaitable[StarsInvoice]"]
OnClick = Callable[[CallbackQuery, Any, DialogManager], Awaitable[None]]


def invoice_on_click(make: InvoiceFactory) -> OnClick:
    """An aiogram_dialog ``on_click`` that sends the invoice ``make(manager)`` returns.

    ``Button(Const("Pay"), id="pay", on_click=invoice_on_click(order_invoice))``: the
    invoice arrives as a message of its own below the window, with Telegram's Pay button.
    """

    async def on_click(callback: CallbackQuery, _button: Any, manager: DialogManager) -> None:
        invoice = make(manager)
        if inspect.isawaitable(invoice):
            invoice = await invoice
        assert isinstance(invoice, StarsInvoice)
        message = callback.message
        chat_id = message.chat.id if message is not None else callback.from_user.id
        await invoice.send(callback.bot or manager.middleware_data["bot"], chat_id)

    return on_click
