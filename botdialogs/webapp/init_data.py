"""Telegram Mini App ``initData``: parsing it strictly, checking its hash or Ed25519 signature.

``initData`` is the query string ``Telegram.WebApp.initData`` that Telegram hands the page.
Two ways to trust it (https://core.telegram.org/bots/webapps):

- the bot's own check (:func:`check_hash`): ``hash`` is the hex HMAC-SHA256 of the
  data-check-string, keyed with ``HMAC-SHA256(key="WebAppData", msg=bot_token)``;
- the third-party check (:func:`check_signature`): ``signature`` is Telegram's Ed25519
  signature of ``"<bot_id>:WebAppData\\n" + data-check-string`` (without ``hash`` and
  ``signature``), checked with Telegram's public key; it needs the bot id only, no token.

The data-check-string is every received field but the excluded ones, sorted by key, as
``key=value`` lines. These functions know nothing of Django; :mod:`.verify` applies the
site's bots and settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from botdialogs.exceptions import MissingExtra
from botdialogs.webapp.exceptions import BadHash, InitDataExpired, MalformedInitData

#: Telegram's Ed25519 keys for the third-party check (production and test environment).
TELEGRAM_PUBLIC_KEY = "e7bf03a2fa4602af4580703d88dda5bb59f32ed8b02a56c187fe7d34caed242d"
TELEGRAM_TEST_PUBLIC_KEY = "40055058a4ee38156a06562e52eece92a771bcd8346a8c4615cb7376eddf72ec"
#: A clock a little ahead of Telegram's is not an attack: allow this much of the future.
CLOCK_SKEW = 60
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_MAX_FIELDS = 32


@dataclass(frozen=True)
class TelegramUser:
    """A Telegram user as a Mini App (``WebAppUser``) or the Login Widget describes them."""

    id: int
    first_name: str
    last_name: str = ""
    username: str = ""
    language_code: str = ""
    photo_url: str = ""
    is_bot: bool = False
    is_premium: bool = False
    allows_write_to_pm: bool = False

    @property
    def full_name(self) -> str:
        """First and last name, as Telegram shows them."""
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class WebAppChat:
    """The chat a Mini App was opened in (only for apps opened from the attachment menu)."""

    id: int
    type: str
    title: str = ""
    username: str = ""
    photo_url: str = ""


@dataclass(frozen=True)
class WebAppInitData:
    """Checked ``initData``: the typed fields, and every raw field (``fields``) as received."""

    auth_date: datetime
    hash: str
    user: TelegramUser | None = None
    receiver: TelegramUser | None = None
    chat: WebAppChat | None = None
    chat_type: str = ""
    chat_instance: str = ""
    start_param: str = ""
    query_id: str = ""
    can_send_after: int | None = None
    signature: str = ""
    fields: Mapping[str, str] = field(default_factory=dict, repr=False)


def parse_fields(init_data: str | bytes, *, max_bytes: int) -> dict[str, str]:
    """The fields of ``init_data``; MalformedInitData when it is not a proper ``initData``.

    Refused: nothing, more than ``max_bytes``, non-UTF-8 (raw or percent-escaped), a part
    without ``=``, a key given twice (which one would the hash cover?), no ``hash``.
    """
    if isinstance(init_data, bytes):
        if len(init_data) > max_bytes:
            raise MalformedInitData(f"initData is longer than {max_bytes} bytes")
        try:
            init_data = init_data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInitData("initData is not UTF-8") from None
    if not isinstance(init_data, str) or not init_data:
        raise MalformedInitData("initData is missing")
    if len(init_data.encode("utf-8", "surrogatepass")) > max_bytes:
        raise MalformedInitData(f"initData is longer than {max_bytes} bytes")
    try:
        pairs = parse_qsl(
            init_data,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise MalformedInitData(
            "initData is not UTF-8 (a percent-escape decodes to no text)"
        ) from None
    except ValueError as error:
        raise MalformedInitData(f"initData is not a query string: {error}") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise MalformedInitData(f"initData has {key!r} twice")
        if "\n" in key or "\n" in value:
            # A line feed would let one field pose as two in the data-check-string.
            raise MalformedInitData(f"initData field {key!r} holds a line feed")
        fields[key] = value
    if not _HEX_HASH.fullmatch(fields.get("hash", "")):
        raise MalformedInitData("initData has no hash (64 hex digits): truncated?")
    return fields


def data_check_string(fields: Mapping[str, str], *, exclude: tuple[str, ...] = ("hash",)) -> str:
    """Every field but ``exclude``, sorted by key, as ``key=value`` lines."""
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key not in exclude)


def _secret_key(token: str) -> bytes:
    return hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()


def hash_for(fields: Mapping[str, str], token: str) -> str:
    """The hex ``hash`` a bot with ``token`` gives ``fields`` (``hash`` itself left out)."""
    return hmac.new(
        _secret_key(token), data_check_string(fields).encode(), hashlib.sha256
    ).hexdigest()


def check_hash(fields: Mapping[str, str], token: str) -> None:
    """BadHash unless ``fields['hash']`` is the bot's own HMAC (compared in constant time)."""
    if not hmac.compare_digest(hash_for(fields, token), fields.get("hash", "")):
        raise BadHash("initData was not signed with this bot's token (forged or changed)")


def check_signature(
    fields: Mapping[str, str], bot_id: int, *, public_key: str = TELEGRAM_PUBLIC_KEY
) -> None:
    """BadHash unless ``fields['signature']`` is Telegram's Ed25519 signature for ``bot_id``."""
    signature = fields.get("signature", "")
    if not signature:
        raise BadHash("initData has no signature (the third-party check needs one)")
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except (binascii.Error, ValueError):
        raise BadHash("initData's signature is not base64url") from None
    message = f"{bot_id}:WebAppData\n" + data_check_string(fields, exclude=("hash", "signature"))
    # Only the third-party check needs Ed25519: the HMAC scheme works without the extra.
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        raise MissingExtra("webapp", "cryptography", "The Mini App Ed25519 check") from None
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(raw, message.encode())
    except InvalidSignature:
        raise BadHash(f"initData's signature is not Telegram's for bot {bot_id}") from None


def check_age(auth_date: int, max_age: int, *, now: float | None = None) -> None:
    """InitDataExpired when ``auth_date`` is more than ``max_age`` seconds old, or ahead."""
    now = time.time() if now is None else now
    if auth_date > now + CLOCK_SKEW:
        raise InitDataExpired("auth_date lies in the future: check this server's clock")
    if now - auth_date > max_age:
        raise InitDataExpired(
            f"initData is {int(now - auth_date)} seconds old (at most {max_age}): reopen the app"
        )


def auth_date_of(fields: Mapping[str, str]) -> int:
    """The ``auth_date`` field as a Unix time; MalformedInitData if missing or not digits."""
    value = fields.get("auth_date", "")
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise MalformedInitData("initData has no auth_date (a Unix time)")
    return int(value)


def _json_object(fields: Mapping[str, str], key: str) -> dict[str, Any] | None:
    if key not in fields:
        return None
    try:
        value = json.loads(fields[key])
    except ValueError:
        raise MalformedInitData(f"initData's {key} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedInitData(f"initData's {key} is not a JSON object")
    return value


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedInitData(f"{what} id is not an integer")
    return value


def _text(data: Mapping[str, Any], key: str, what: str, *, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise MalformedInitData(f"{what} {key} is not {'a non-empty' if required else 'a'} string")
    return value


def user_from(data: Mapping[str, Any], what: str = "user") -> TelegramUser:
    """A TelegramUser from Telegram's JSON object; MalformedInitData for a bad field."""
    return TelegramUser(
        id=_id(data.get("id"), what),
        first_name=_text(data, "first_name", what),
        last_name=_text(data, "last_name", what),
        username=_text(data, "username", what),
        language_code=_text(data, "language_code", what),
        photo_url=_text(data, "photo_url", what),
        is_bot=data.get("is_bot") is True,
        is_premium=data.get("is_premium") is True,
        allows_write_to_pm=data.get("allows_write_to_pm") is True,
    )


def init_data_from(fields: Mapping[str, str]) -> WebAppInitData:
    """Typed :class:`WebAppInitData` of checked ``fields``; MalformedInitData for a bad one."""
    user = _json_object(fields, "user")
    receiver = _json_object(fields, "receiver")
    chat = _json_object(fields, "chat")
    can_send_after = fields.get("can_send_after")
    if can_send_after is not None and not (can_send_after.isascii() and can_send_after.isdigit()):
        raise MalformedInitData("initData's can_send_after is not a number of seconds")
    return WebAppInitData(
        auth_date=datetime.fromtimestamp(auth_date_of(fields), UTC),
        hash=fields["hash"],
        user=user_from(user) if user is not None else None,
        receiver=user_from(receiver, "receiver") if receiver is not None else None,
        chat=(
            WebAppChat(
                id=_id(chat.get("id"), "chat"),
                type=_text(chat, "type", "chat", required=True),
                title=_text(chat, "title", "chat"),
                username=_text(chat, "username", "chat"),
                photo_url=_text(chat, "photo_url", "chat"),
            )
            if chat is not None
            else None
        ),
        chat_type=fields.get("chat_type", ""),
        chat_instance=fields.get("chat_instance", ""),
        start_param=fields.get("start_param", ""),
        query_id=fields.get("query_id", ""),
        can_send_after=int(can_send_after) if can_send_after is not None else None,
        signature=fields.get("signature", ""),
        fields=dict(fields),
    )


def sign_init_data(fields: Mapping[str, Any], token: str, *, auth_date: int | None = None) -> str:
    """``initData`` for ``fields`` signed with ``token``, as Telegram would send it.

    For local Telegram (whose bots have public tokens) and tests. Dicts (``user``, ``chat``)
    become JSON; ``auth_date`` defaults to now.
    """
    values = {
        key: json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)
        for key, value in fields.items()
    }
    values.setdefault("auth_date", str(int(time.time()) if auth_date is None else auth_date))
    values["hash"] = hash_for(values, token)
    return urlencode(values)
