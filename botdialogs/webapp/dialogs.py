"""From a Mini App's request to the user's dialog, once per request however often it comes.

The page sends an ``Idempotency-Key`` header (a random id it makes once per user action and
sends again on every retry of it). Each call here builds the background action with an id
derived from the bot, the Telegram user, that key and the call's place in the view (first,
second, ...): a retried request makes the same ids, and a background action's id commits with
the dialog state it changed (:mod:`botdialogs.background.records`), so the second delivery
finds it done and changes nothing.

The action is delivered after the view's transaction commits and, unlike
``botdialogs.background``'s calls, a failed delivery is not only logged: it raises, the
view answers 500, and the page's retry (same key) delivers it again. Keep the view's own
writes keyed by :func:`request_key` too (``get_or_create``), as the demo's order is.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from aiogram.fsm.state import State
from django.db import DEFAULT_DB_ALIAS, transaction
from django.http import HttpRequest

from botdialogs.background import build_action, deliver
from botdialogs.webapp.exceptions import MalformedInitData, MissingIdempotencyKey
from botdialogs.webapp.requests import TelegramWebAppUser

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"[A-Za-z0-9_.:-]{8,128}")


def _telegram_user(request: HttpRequest) -> TelegramWebAppUser:
    telegram_user = getattr(request, "telegram_user", None)
    if not isinstance(telegram_user, TelegramWebAppUser):
        raise TypeError("Only for views decorated with botdialogs.webapp.telegram_web_app")
    return telegram_user


def request_key(request: HttpRequest) -> str:
    """This request's idempotency key, scoped to its Telegram user and bot (hex, 40 chars).

    Raises MissingIdempotencyKey (400) without the header, MalformedInitData for a bad one.
    """
    telegram_user = _telegram_user(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        raise MissingIdempotencyKey(f"The {IDEMPOTENCY_HEADER} header is required here")
    if not _KEY.fullmatch(key):
        raise MalformedInitData(
            f"{IDEMPOTENCY_HEADER} must be 8 to 128 of A-Z a-z 0-9 _ . : - (a UUID will do)"
        )
    scoped = f"{telegram_user.bot}\n{telegram_user.id}\n{key}"
    return hashlib.sha256(scoped.encode()).hexdigest()[:40]


def _next_action_id(request: HttpRequest) -> str:
    number = getattr(request, "_botdialogs_webapp_actions", 0) + 1
    request._botdialogs_webapp_actions = number  # type: ignore[attr-defined]
    return f"webapp-{request_key(request)}-{number}"


def _send(request: HttpRequest, kind: str, using: str, **parameters: Any) -> str:
    telegram_user = _telegram_user(request)
    action = build_action(
        kind, telegram_user.bot, telegram_user.id, telegram_user.chat_id, **parameters
    )
    action["id"] = _next_action_id(request)
    # Not robust: a delivery that fails must fail the request, so that the page retries.
    transaction.on_commit(functools.partial(deliver, action), using=using)
    return str(action["id"])


def start(
    request: HttpRequest,
    state: State | str,
    data: Any = None,
    *,
    mode: Any = "normal",
    show_mode: Any = None,
    using: str = DEFAULT_DB_ALIAS,
) -> str:
    """Start the dialog of ``state`` in the Mini App user's chat, once per request key."""
    return _send(request, "start", using, state=state, data=data, mode=mode, show_mode=show_mode)


def switch_to(
    request: HttpRequest,
    state: State | str,
    *,
    show_mode: Any = None,
    using: str = DEFAULT_DB_ALIAS,
) -> str:
    """Switch the user's current dialog to ``state``, once per request key."""
    return _send(request, "switch_to", using, state=state, show_mode=show_mode)


def update(
    request: HttpRequest,
    data: dict[str, Any] | None = None,
    *,
    show_mode: Any = None,
    using: str = DEFAULT_DB_ALIAS,
) -> str:
    """Merge ``data`` into the user's current dialog and show it again, once per request key."""
    return _send(request, "update", using, data=data, show_mode=show_mode)


def done(
    request: HttpRequest,
    result: Any = None,
    *,
    show_mode: Any = None,
    using: str = DEFAULT_DB_ALIAS,
) -> str:
    """Close the user's current dialog with ``result``, once per request key."""
    return _send(request, "done", using, result=result, show_mode=show_mode)
