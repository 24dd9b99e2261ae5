"""The Telegram Login Widget ("Log in with Telegram" on a website): checking what it sends.

The widget hands the page ``id, first_name, last_name, username, photo_url, auth_date`` and
``hash``: the hex HMAC-SHA256 of the data-check-string (as for Mini Apps) keyed with
``SHA256(bot_token)`` (https://core.telegram.org/widgets/login).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from botdialogs.conf import get_settings
from botdialogs.webapp.exceptions import BadHash, MalformedInitData
from botdialogs.webapp.init_data import (
    TelegramUser,
    auth_date_of,
    check_age,
    data_check_string,
)
from botdialogs.webapp.verify import token_for

_MAX_FIELDS = 16


def _fields(data: Mapping[str, Any]) -> dict[str, str]:
    lists = getattr(data, "lists", None)  # a QueryDict: one key may come twice
    pairs = list(lists()) if callable(lists) else [(key, [value]) for key, value in data.items()]
    if not pairs or len(pairs) > _MAX_FIELDS:
        raise MalformedInitData("Login Widget data is missing or has too many fields")
    fields: dict[str, str] = {}
    for key, values in pairs:
        if len(values) != 1:
            raise MalformedInitData(f"Login Widget data has {key!r} twice")
        value = values[0]
        if not isinstance(key, str) or not isinstance(value, str | int) or isinstance(value, bool):
            raise MalformedInitData(f"Login Widget field {key!r} is not text")
        value = str(value)
        if "\n" in key or "\n" in value or len(value) > 1024:
            raise MalformedInitData(f"Login Widget field {key!r} is malformed")
        fields[key] = value
    return fields


def login_widget_hash(fields: Mapping[str, str], token: str) -> str:
    """The hex ``hash`` the Login Widget gives ``fields`` for the bot with ``token``."""
    secret = hashlib.sha256(token.encode()).digest()
    return hmac.new(secret, data_check_string(fields).encode(), hashlib.sha256).hexdigest()


def verify_login_widget(
    data: Mapping[str, Any], bot: str, *, now: float | None = None
) -> TelegramUser:
    """The Telegram user the Login Widget data names, checked with ``bot``'s token.

    ``data`` is the widget's object (a dict) or the query it redirected with
    (``request.GET``/``request.POST``). Raises MalformedInitData (400), BadHash,
    InitDataExpired (older than ``LOGIN_WIDGET_MAX_AGE``) or LocalBotRefused (403).
    """
    token = token_for(bot)
    fields = _fields(data)
    expected = login_widget_hash(fields, token)
    if not hmac.compare_digest(expected, fields.get("hash", "")):
        raise BadHash("Login Widget data was not signed with this bot's token")
    check_age(auth_date_of(fields), get_settings().login_widget_max_age, now=now)
    user_id = fields.get("id", "")
    if not user_id.isascii() or not user_id.isdigit():
        raise MalformedInitData("Login Widget id is not a number")
    return TelegramUser(
        id=int(user_id),
        first_name=fields.get("first_name", ""),
        last_name=fields.get("last_name", ""),
        username=fields.get("username", ""),
        photo_url=fields.get("photo_url", ""),
    )


def sign_login_widget(fields: Mapping[str, Any], token: str) -> dict[str, str]:
    """Login Widget data for ``fields`` signed with ``token`` (tests, local Telegram)."""
    values = {key: str(value) for key, value in fields.items()}
    values.setdefault("auth_date", str(int(time.time())))
    values["hash"] = login_widget_hash(values, token)
    return values
