"""The two aiogram middlewares that carry payments through a bot's Dispatcher.

- :class:`PreCheckoutMiddleware`, before the FSM middleware: a ``pre_checkout_query`` is
  answered by the site's ``PAYMENT_PRE_CHECKOUT`` hook without waiting for the user's chat
  lock (a long update of the same chat must not push the answer past Telegram's 10
  seconds); the answer travels in the webhook response in inline mode.
- :class:`PaymentMiddleware`, inside the FSM middleware: a ``successful_payment`` is
  recorded in the update's unit of work (:mod:`.recording`), then the bot's handlers run.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.methods import AnswerPreCheckoutQuery
from aiogram.types import PreCheckoutQuery, TelegramObject, Update
from asgiref.sync import sync_to_async
from django.utils.module_loading import import_string

from botdialogs.conf import get_settings
from botdialogs.exceptions import is_transient
from botdialogs.payments.recording import (
    ReceivedPayment,
    payment_write,
    record_alone,
    site_changes,
)
from botdialogs.storage import DjangoStorage

logger = logging.getLogger("botdialogs.payments")

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

#: What the buyer reads when the site's hook failed (its error is logged).
HOOK_FAILED = "This order cannot be paid right now. Please try again later."
#: Telegram shows at most this many characters of ``error_message``.
ERROR_MESSAGE_LIMIT = 255


async def pre_checkout_answer(query: PreCheckoutQuery) -> AnswerPreCheckoutQuery | None:
    """The site's answer to ``query`` (``PAYMENT_PRE_CHECKOUT``), or None without a hook.

    The hook is ``f(query) -> None | str`` (sync or async): None accepts, a text refuses
    with that message. A hook that raises refuses with :data:`HOOK_FAILED`, unless the
    failure is passing (database, network): that propagates, for a 5xx and a redelivery.
    """
    path = get_settings().payment_pre_checkout
    if not path:
        return None
    hook = import_string(path)
    try:
        result = hook(query) if inspect.iscoroutinefunction(hook) else sync_to_async(hook)(query)
        error = await result
    except Exception as failure:
        if is_transient(failure):
            raise
        logger.exception("PAYMENT_PRE_CHECKOUT %s failed on %r", path, query.invoice_payload)
        error = HOOK_FAILED
    if error is not None and not isinstance(error, str):
        logger.error("PAYMENT_PRE_CHECKOUT %s gave %r, not None or a text", path, error)
        error = HOOK_FAILED
    return AnswerPreCheckoutQuery(
        pre_checkout_query_id=query.id,
        ok=not error,
        error_message=error[:ERROR_MESSAGE_LIMIT] if error else None,
    )


class PreCheckoutMiddleware(BaseMiddleware):
    """Answers ``pre_checkout_query`` with the site's hook, before any chat lock."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        query = event.pre_checkout_query if isinstance(event, Update) else None
        if query is None:
            return await handler(event, data)
        answer = await pre_checkout_answer(query)
        if answer is None:  # no hook: the bot's own handlers answer
            return await handler(event, data)
        bot: Bot = data["bot"]
        bot_name = data.get("botdialogs_bot_name")
        if bot_name is None or get_settings().bot(bot_name).mode == "queued":
            # A queued update has no webhook response to ride in.
            await bot(answer)
            return None
        return answer  # the webhook's response body (aiogram's reply in webhook response)


class PaymentMiddleware(BaseMiddleware):
    """Records a ``successful_payment`` with the update's state, once per charge id."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        message = event.message if isinstance(event, Update) else None
        if message is None or message.successful_payment is None:
            return await handler(event, data)
        assert isinstance(event, Update)
        bot_name = data.get("botdialogs_bot_name") or str(data["bot"].id)
        payment = ReceivedPayment.from_message(bot_name, event.update_id, message)

        def build() -> Any:
            try:
                changes = site_changes(payment)
            except Exception as error:
                if is_transient(error):
                    raise
                # The money is taken: the payment is recorded even if the site's change is not.
                logger.exception(
                    "PAYMENT_RECEIVED failed on payment %s: recorded without the site's change",
                    payment.telegram_payment_charge_id,
                )
                changes = []
            return payment_write(payment, changes)

        write = await sync_to_async(build)()
        unit = DjangoStorage.running_unit()
        if unit is None:
            # A storage without a unit of work: the row's constraint still keeps it once.
            await sync_to_async(record_alone)(write)
            return await handler(event, data)
        unit.add_write(write)
        try:
            return await handler(event, data)
        except Exception as error:
            if is_transient(error):
                raise  # nothing commits: the redelivery records it
            # A handler's bug must not lose the money: its changes go, the payment stays.
            logger.exception("A handler failed on payment %s", payment.telegram_payment_charge_id)
            unit.discard_changes()
            unit.add_write(write)
            return None


def install(dispatcher: Dispatcher) -> None:
    """Put both middlewares on ``dispatcher``, around its FSM middleware (call after the
    FSM middleware is installed and before any middleware meant to run inside it)."""
    outer = dispatcher.update.outer_middleware
    outer.unregister(dispatcher.fsm)
    outer(PreCheckoutMiddleware())
    outer(dispatcher.fsm)
    outer(PaymentMiddleware())
