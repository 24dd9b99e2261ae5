"""One webhook delivery, top to bottom: check it, then process it exactly once.

The path production takes (both transports, :mod:`.asgi` and :mod:`.views`, are thin):

1. :func:`check_headers`: the bot exists (404), the secret matches (403), the declared size
   fits (413), before the body is read;
2. :func:`parse_delivery`: the body is one JSON object every column can hold and a Telegram
   ``Update`` (400); nothing is stored before this passes;
3. :func:`handle_delivery`: queued mode hands the raw update to the Celery task (which calls
   :func:`process_update` in a worker); inline mode calls :func:`process_update` here;
4. :func:`process_update`: builds the update's claim (:class:`.claims.UpdateClaim`) and
   passes it to the bot's Dispatcher in ``feed_update``'s data; the FSM middleware
   (:mod:`botdialogs.engine.middleware`) opens the chat's unit of work with it, so the
   ``update_id`` commits with the state the handlers changed. It returns what may go back
   in the webhook response (aiogram's "reply in webhook response").

Errors map to HTTP statuses in one table, :data:`ERROR_STATUSES` (:func:`error_status`).
"""

from __future__ import annotations

import hmac
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pydantic_core
from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from asgiref.sync import sync_to_async
from pydantic import ValidationError

from botdialogs.conf import get_settings, missing_required_secret
from botdialogs.engine.bots import get_bot, get_dispatcher
from botdialogs.engine.middleware import CLAIM
from botdialogs.exceptions import (
    BadUpdate,
    StorageUnavailable,
    UnknownBot,
    UpdateTooLarge,
    WebhookForbidden,
    is_transient,
)
from botdialogs.http.claims import UpdateClaim
from botdialogs.http.lifespan import warn_without_firer
from botdialogs.monitor import UpdateEvents
from botdialogs.storage import ClaimOutcome, DjangoStorage

logger = logging.getLogger("botdialogs.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


#: What a refused delivery answers, for both transports (:mod:`.asgi`, :mod:`.views`); a
#: description of None says the error's own text. Nothing was stored for any of them.
ERROR_STATUSES: tuple[tuple[type[Exception], int, str | None], ...] = (
    (UnknownBot, 404, "Unknown bot"),
    (WebhookForbidden, 403, "Forbidden"),
    (UpdateTooLarge, 413, "Request body too large"),
    (BadUpdate, 400, None),
)
#: A passing failure (database, broker, Telegram): nothing was committed or queued, and
#: Telegram delivers the update again.
TRY_AGAIN = (503, "Try again later")


def error_status(error: Exception) -> tuple[int, str] | None:
    """``(status, description)`` for a delivery's error; None for a bug of ours (a 500)."""
    for kind, status, description in ERROR_STATUSES:
        if isinstance(error, kind):
            return status, description or str(error)
    if is_transient(error):
        return TRY_AGAIN
    return None


#: Telegram's integers fit a signed 64-bit column (its ids have at most 52 significant bits).
MAX_INT64 = 2**63 - 1


@dataclass(frozen=True)
class Delivery:
    """One accepted webhook delivery: the validated Update, the dict it came from, its id.

    ``raw`` is the body's JSON object as parsed (once), for code that passes the update on
    as JSON (the queued mode's task, :func:`handle_delivery`); ``update`` is aiogram's
    validated ``Update`` (not bound to a Bot); ``update_id`` is in ``[0, MAX_INT64]``.
    """

    update: Update
    raw: dict[str, Any]
    update_id: int


def check_secret(bot_name: str, given: str | None) -> None:
    """Raise WebhookForbidden unless ``given`` is the bot's secret.

    A bot without a secret is open only while that is safe: a bot with a real token and no
    secret is refused while DEBUG is off (:func:`botdialogs.conf.missing_required_secret`),
    even if ``manage.py check`` (botdialogs.E014) was skipped.
    """
    bot = get_settings().bot(bot_name)
    expected = bot.webhook_secret
    if not expected:
        if missing_required_secret(bot):
            logger.error(
                "Delivery to bot %r refused: it has a token but no WEBHOOK_SECRET while DEBUG "
                "is off (botdialogs.E014)",
                bot_name,
            )
            raise WebhookForbidden(f"Bot {bot_name!r} has no WEBHOOK_SECRET: deliveries refused")
        return
    # Constant time: the comparison must not tell an attacker how much of a guess was right.
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookForbidden(f"Wrong or missing {SECRET_HEADER} for bot {bot_name!r}")


def check_declared_size(content_length: str | None) -> None:
    """Raise UpdateTooLarge (or BadUpdate) from the Content-Length header, before reading."""
    if not content_length:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise BadUpdate(f"Content-Length {content_length[:40]!r} is not a number") from None
    if declared < 0:
        raise BadUpdate(f"Content-Length {declared} is negative")
    if declared > get_settings().webhook_max_body_bytes:
        raise UpdateTooLarge(f"Content-Length {declared} is over WEBHOOK_MAX_BODY_BYTES")


def check_headers(bot_name: str, secret: str | None, content_length: str | None) -> None:
    """The checks a delivery's headers allow, in the order a client learns of them."""
    get_settings().bot(bot_name)  # UnknownBot first: an unknown bot has no secret to check
    check_secret(bot_name, secret)
    check_declared_size(content_length)


def parse_delivery(body: bytes, bot: Bot | None = None) -> Delivery:
    """The :class:`Delivery` in a webhook body; raises UpdateTooLarge or BadUpdate.

    The body is parsed once, by pydantic-core's JSON parser: it stops at a nesting depth of
    a few hundred (Python's ``json`` recursed until RecursionError) and refuses NaN and
    Infinity. (``Update.model_validate_json`` uses the same parser but lets NaN through and
    keeps no raw dict, which the queued mode needs: it would mean a second parse.) The
    parsed dict is then validated as an ``Update``. Every value must fit the database:
    integers in signed 64 bits, finite numbers, no NUL in any text (PostgreSQL refuses it).
    ``update_id`` must be a JSON integer from 0 to ``MAX_INT64``. Nothing is stored.
    With ``bot`` the Update is bound to it, so the Dispatcher need not rebuild it.
    """
    limit = get_settings().webhook_max_body_bytes
    if len(body) > limit:
        # The header can lie (or be absent with chunked encoding): count what arrived.
        raise UpdateTooLarge(f"Body of {len(body)} bytes is over WEBHOOK_MAX_BODY_BYTES")
    try:
        raw = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as error:
        raise BadUpdate(f"Body is not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise BadUpdate("Body is not a JSON object")
    problem = _unstorable_value(raw)
    if problem:
        raise BadUpdate(problem)
    update_id = raw.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        raise BadUpdate("update_id must be an integer from 0 to 2**63-1")
    try:
        update = Update.model_validate(raw, context={"bot": bot} if bot is not None else None)
    except ValidationError as error:
        raise BadUpdate(f"Body is not a Telegram Update: {error.error_count()} errors") from None
    return Delivery(update=update, raw=raw, update_id=update_id)


def _unstorable_value(raw: dict[str, Any]) -> str | None:
    """What in a parsed body no column could hold, or None (a walk, not a recursion)."""
    pending: list[Any] = [raw]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "Body holds a NUL character (U+0000) in a text"
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not -MAX_INT64 - 1 <= item <= MAX_INT64:
                return f"Body holds an integer outside signed 64 bits ({str(item)[:24]}...)"
        elif isinstance(item, float) and not math.isfinite(item):
            return "Body holds a number too large for a float"
    return None


def update_claim(bot_name: str, update_id: int) -> UpdateClaim:
    """The claim that commits ``update_id`` with the state its update changes."""
    ttl = timedelta(seconds=get_settings().update_id_ttl)
    return UpdateClaim(bot_name=bot_name, update_id=update_id, ttl=ttl)


async def process_update(bot_name: str, update: Update | dict[str, Any]) -> dict[str, Any] | None:
    """Handle one update exactly once, in effect; returns the webhook response body, if any.

    The update's claim (:class:`~botdialogs.http.claims.UpdateClaim`) goes to the
    Dispatcher in the event data (``CLAIM``); the FSM middleware's unit of work commits it
    with the state its handlers changed. Outcomes:

    - handled: the state and the update id are committed; returns the method a handler
      returned, when it can travel in the webhook response (``{"method": ...}``);
    - a redelivery of a committed update: not handled again, returns None;
    - a handler's bug: logged with its traceback, the update id is committed without the
      state changes (a retry would fail the same way), returns None;
    - a passing failure (database, Redis, Telegram's network), or any failure of the unit
      of work itself (opening, committing, closing: never a handler's bug): nothing is
      committed and the error propagates (:class:`StorageUnavailable` for the unit's own),
      so the webhook answers 5xx or the task is retried, and the redelivery is handled
      afresh. Messages sent before it may be sent again then.

    A storage without a unit of work (Redis, memory) has the id checked before and recorded
    after the handlers ran: at least once, not exactly once.
    """
    bot = get_bot(bot_name)
    dispatcher = get_dispatcher(bot_name)
    if not isinstance(update, Update):
        update = Update.model_validate(update, context={"bot": bot})
    claim = update_claim(bot_name, update.update_id)
    with_unit = isinstance(dispatcher.fsm.storage, DjangoStorage)
    if not with_unit and await sync_to_async(claim.taken)():
        _redelivered(claim)
        return None
    events = UpdateEvents()  # the live monitor's, held until the update is known handled
    try:
        with events:
            result = await dispatcher.feed_update(bot, update, **{CLAIM: claim})
    except Exception as error:
        if is_transient(error):
            logger.warning("%s not processed, to be retried: %r", claim.describe(), error)
            raise
        if claim.outcome is ClaimOutcome.NOT_COMMITTED:
            # Not the handlers' error: their unit of work did not commit (a site's error
            # handler replaced its error with another). Nothing is stored: retry.
            logger.warning("%s not processed, to be retried: %r", claim.describe(), error)
            raise StorageUnavailable(f"{claim.describe()} was not committed") from error
        logger.exception("Update %s of bot %r failed in its handler", update.update_id, bot_name)
        events.error = error
        result = None
    # Raises StorageUnavailable (5xx, retry) if the unit of work did not commit the claim,
    # even when its error was swallowed on the way up (a site's catch-all error handler).
    if not await claim.confirm():
        _redelivered(claim)  # committed before, or (without a unit of work) a concurrent one
        return None
    events.publish(bot_name, update)
    if isinstance(result, TelegramMethod):
        return await _method_response(bot, dispatcher_call=result)
    return None


def _redelivered(claim: UpdateClaim) -> None:
    logger.info("%s delivered again: acknowledged, not handled twice", claim.describe())


async def _method_response(bot: Bot, dispatcher_call: TelegramMethod[Any]) -> dict[str, Any] | None:
    """The JSON webhook reply for a returned method, or None after calling it directly."""
    files: dict[str, Any] = {}
    payload: dict[str, Any] = {"method": dispatcher_call.__api_method__}
    for key, value in dispatcher_call.model_dump(warnings=False).items():
        prepared = bot.session.prepare_value(value, bot=bot, files=files, _dumps_json=False)
        if prepared is not None:
            payload[key] = prepared
    if files:
        # An upload cannot ride in a JSON response: make the call ourselves.
        await bot(dispatcher_call)
        return None
    return payload


async def handle_delivery(bot_name: str, delivery: Delivery | dict[str, Any]) -> dict[str, Any]:
    """Process one accepted delivery (or raw update dict) in the bot's mode; returns the
    response body.

    Raises on a passing failure (nothing committed, nothing queued): answer 5xx, and
    Telegram delivers the update again.
    """
    await warn_without_firer()  # once per process: timers that nothing would fire
    if get_settings().bot(bot_name).mode == "queued":
        raw = delivery.raw if isinstance(delivery, Delivery) else delivery
        await enqueue_update(bot_name, raw)
        return {}
    update = delivery.update if isinstance(delivery, Delivery) else delivery
    return await process_update(bot_name, update) or {}


async def enqueue_update(bot_name: str, raw_update: dict[str, Any]) -> None:
    """Hand the update to the Celery task; the worker takes its update id, not the view.

    Raises when the broker does not take it (the webhook answers 5xx, Telegram retries).
    """
    from botdialogs import task_queue

    # Sending talks to the broker (or runs the task eagerly, which crosses back to async via
    # call_async): both are sync and must leave this event loop's thread.
    await sync_to_async(task_queue.enqueue, thread_sensitive=False)(
        task_queue.PROCESS_UPDATE, bot_name, raw_update
    )
