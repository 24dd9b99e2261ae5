"""Why a Mini App's ``initData`` or a Login Widget's data was refused, each with its HTTP status.

Malformed input is a 400 (the client sent something that is not ``initData``); anything
that is well formed but not trusted (forged, expired, signed for another bot, a local bot
outside DEBUG) is a 403. Catch :class:`TelegramAuthError` to catch them all.
"""

from __future__ import annotations

from botdialogs.exceptions import BotDialogsError


class TelegramAuthError(BotDialogsError, ValueError):
    """``initData`` or Login Widget data that cannot be trusted; ``status`` is the HTTP answer."""

    status = 403


class MalformedInitData(TelegramAuthError):
    """Missing, oversized, truncated, non-UTF-8 data, a duplicate key or a bad field."""

    status = 400


class BadHash(TelegramAuthError):
    """The hash (or Ed25519 signature) does not match: forged or changed data."""


class InitDataExpired(TelegramAuthError):
    """``auth_date`` is older than the maximum age (or lies in the future)."""


class WrongBot(BadHash):
    """Valid data, signed for another of this site's bots than the one the view serves."""


class LocalBotRefused(TelegramAuthError):
    """A local bot (no token) outside DEBUG: its token is public, so anyone could sign."""


class MissingIdempotencyKey(TelegramAuthError):
    """A request that changes a dialog without an ``Idempotency-Key`` header."""

    status = 400


class LinkConflict(TelegramAuthError):
    """A Telegram user already linked to another site account than the signed-in one."""

    status = 409
