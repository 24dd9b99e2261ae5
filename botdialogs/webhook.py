"""Webhook handling: accept one Telegram delivery and process it exactly once.

The view (:func:`botdialogs.views.webhook`) only translates HTTP; everything here is plain
async code that tests call directly:

- :func:`accept_update` checks the secret, the size and the shape of a delivery and raises
  :class:`~botdialogs.exceptions.WebhookForbidden`, :class:`~botdialogs.exceptions.UpdateTooLarge`,
  :class:`~botdialogs.exceptions.BadUpdate` or :class:`~botdialogs.exceptions.UnknownBot`
  before anything is stored;
- :func:`process_update` feeds the bot's Dispatcher exactly once, in effect: the update's
  ``update_id`` commits with the state its handlers changed (see its docstring), and it
  returns what may go back in the webhook response (aiogram's "reply in webhook response");
- :func:`handle_delivery` picks inline or queued mode (the Celery worker then calls
  :func:`process_update`).
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from asgiref.sync import sync_to_async
from django.utils import timezone
from pydantic import ValidationError

from botdialogs.bots import get_bot, get_dispatcher
from botdialogs.conf import get_settings
from botdialogs.exceptions import BadUpdate, UpdateTooLarge, WebhookForbidden, is_transient
from botdialogs.models import ProcessedUpdate
from botdialogs.storage import DjangoStorage, UpdateClaim, claiming

logger = logging.getLogger("botdialogs.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def check_secret(bot_name: str, given: str | None) -> None:
    """Raise WebhookForbidden unless ``given`` is the bot's secret (when it has one)."""
    expected = get_settings().bot(bot_name).webhook_secret
    if not expected:
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
        raise BadUpdate(f"Content-Length {content_length!r} is not a number") from None
    if declared > get_settings().webhook_max_body_bytes:
        raise UpdateTooLarge(f"Content-Length {declared} is over WEBHOOK_MAX_BODY_BYTES")


def parse_update(body: bytes) -> dict[str, Any]:
    """The raw update dict of a webhook body; raises UpdateTooLarge or BadUpdate."""
    limit = get_settings().webhook_max_body_bytes
    if len(body) > limit:
        # The header can lie (or be absent with chunked encoding): count what arrived.
        raise UpdateTooLarge(f"Body of {len(body)} bytes is over WEBHOOK_MAX_BODY_BYTES")
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadUpdate(f"Body is not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise BadUpdate("Body is not a JSON object")
    try:
        Update.model_validate(raw)
    except ValidationError as error:
        raise BadUpdate(f"Body is not a Telegram Update: {error.error_count()} errors") from None
    if isinstance(raw.get("update_id"), bool):
        raise BadUpdate("update_id must be an integer")
    return raw


def accept_update(
    bot_name: str, secret: str | None, content_length: str | None, body: bytes
) -> dict[str, Any]:
    """Every check of a delivery, in the order a client learns of them; nothing is stored."""
    get_settings().bot(bot_name)  # UnknownBot first: an unknown bot has no secret to check
    check_secret(bot_name, secret)
    check_declared_size(content_length)
    return parse_update(body)


def update_claim(bot_name: str, update_id: int) -> UpdateClaim:
    """The claim that commits ``update_id`` with the state its update changes."""
    ttl = timedelta(seconds=get_settings().update_id_ttl)
    return UpdateClaim(bot_name=bot_name, update_id=update_id, ttl=ttl)


async def take_update_id(bot_name: str, update_id: int) -> bool:
    """Record ``update_id`` as processed in a transaction of its own; False if it was.

    Only for storages without a unit of work (Redis, memory), after the update was handled:
    with DjangoStorage the id commits with the update's state instead.
    """
    return await sync_to_async(update_claim(bot_name, update_id).record)(timezone.now())


def delete_expired_updates() -> int:
    """Delete ProcessedUpdate rows older than ``UPDATE_ID_TTL``; returns how many.

    Sync on purpose: it is meant for ``botdialogs.cleanup`` and Celery beat.
    """
    cutoff = timezone.now() - timedelta(seconds=get_settings().update_id_ttl)
    deleted, _ = ProcessedUpdate.objects.filter(received_at__lt=cutoff).delete()
    return deleted


async def process_update(bot_name: str, update: Update | dict[str, Any]) -> dict[str, Any] | None:
    """Handle one update exactly once, in effect; returns the webhook response body, if any.

    The update's claim (:class:`~botdialogs.storage.UpdateClaim`) commits with the state
    its handlers changed, in the storage's unit of work. Outcomes:

    - handled: the state and the update id are committed; returns the method a handler
      returned, when it can travel in the webhook response (``{"method": ...}``);
    - a redelivery of a committed update: not handled again, returns None;
    - a handler's bug: logged with its traceback, the update id is committed without the
      state changes (a retry would fail the same way), returns None;
    - a passing failure (database, Redis, Telegram's network): nothing is committed and the
      error propagates, so the webhook answers 5xx or the task is retried, and the
      redelivery is handled afresh. Messages sent before it may be sent again then.
    """
    bot = get_bot(bot_name)
    dispatcher = get_dispatcher(bot_name)
    if not isinstance(update, Update):
        update = Update.model_validate(update, context={"bot": bot})
    claim = update_claim(bot_name, update.update_id)
    with_unit = isinstance(dispatcher.fsm.storage, DjangoStorage)
    if not with_unit and await sync_to_async(claim.taken)():
        return _redelivered(claim)
    try:
        with claiming(claim):
            result = await dispatcher.feed_update(bot, update)
    except Exception as error:
        if is_transient(error):
            logger.warning("%s not processed, to be retried: %r", claim.describe(), error)
            raise
        logger.exception("Update %s of bot %r failed in its handler", update.update_id, bot_name)
        result = None
    if claim.fresh is False:
        return _redelivered(claim)
    if claim.fresh is None and not await sync_to_async(claim.record)(timezone.now()):
        return _redelivered(claim)  # without a unit of work, a concurrent delivery won
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


async def handle_delivery(bot_name: str, update: Update | dict[str, Any]) -> dict[str, Any]:
    """Process one accepted delivery in the bot's mode; returns the response body.

    Raises on a passing failure (nothing committed, nothing queued): answer 5xx, and
    Telegram delivers the update again.
    """
    if get_settings().bot(bot_name).mode == "queued":
        raw = (
            update
            if isinstance(update, dict)
            else update.model_dump(mode="json", exclude_unset=True, by_alias=True)
        )
        await enqueue_update(bot_name, raw)
        return {}
    return await process_update(bot_name, update) or {}


async def enqueue_update(bot_name: str, raw_update: dict[str, Any]) -> None:
    """Hand the update to the Celery task; the worker takes its update id, not the view.

    Raises when the broker does not take it (the webhook answers 5xx, Telegram retries).
    """
    from botdialogs.tasks import process_update as task

    # delay() talks to the broker (or runs the task eagerly, which crosses back to async via
    # run_async): both are sync and must leave this event loop's thread.
    await sync_to_async(task.delay, thread_sensitive=False)(bot_name, raw_update)


# -- registering the webhook with Telegram (management commands) --------------------------------
def allowed_updates(bot_name: str) -> list[str]:
    """The update types to ask for: ``ALLOWED_UPDATES``, else what the bot's router handles."""
    configured = get_settings().bot(bot_name).allowed_updates
    if configured is not None:
        return list(configured)
    used = get_dispatcher(bot_name).resolve_used_update_types()
    # aiogram_dialog registers its own "aiogd_update" event: not a type Telegram knows.
    return [kind for kind in used if kind in Update.model_fields and kind != "update_id"]


async def set_webhook(bot_name: str, url: str, drop_pending_updates: bool = False) -> bool:
    """Point Telegram at ``url`` for this bot, with its secret and allowed updates."""
    bot = get_bot(bot_name)
    return await bot.set_webhook(
        url,
        secret_token=get_settings().bot(bot_name).webhook_secret or None,
        allowed_updates=allowed_updates(bot_name),
        drop_pending_updates=drop_pending_updates,
    )


async def delete_webhook(bot_name: str, drop_pending_updates: bool = False) -> bool:
    """Stop Telegram's deliveries to this bot's webhook."""
    return await get_bot(bot_name).delete_webhook(drop_pending_updates=drop_pending_updates)


async def webhook_info(bot_name: str) -> dict[str, Any]:
    """Telegram's getWebhookInfo for this bot, as a plain dict."""
    info = await get_bot(bot_name).get_webhook_info()
    return info.model_dump(exclude_none=True)


async def run_polling(bot_name: str) -> None:
    """Long polling for development: delete the webhook, then poll until interrupted."""
    from botdialogs.bots import bot_scope

    async with bot_scope():
        bot = get_bot(bot_name)
        await bot.delete_webhook()
        await get_dispatcher(bot_name).start_polling(
            bot, allowed_updates=allowed_updates(bot_name), close_bot_session=False
        )
