"""Checking ``initData`` and Login Widget data against this site's bots and settings."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings as django_settings

from botdialogs.conf import get_settings
from botdialogs.webapp.exceptions import BadHash, LocalBotRefused, WrongBot
from botdialogs.webapp.init_data import (
    TELEGRAM_PUBLIC_KEY,
    WebAppInitData,
    auth_date_of,
    check_age,
    check_hash,
    check_signature,
    init_data_from,
    parse_fields,
)


def token_for(bot: str) -> str:
    """The token that signs ``bot``'s data; LocalBotRefused for a local bot outside DEBUG.

    A local bot's token is derived from its name (local Telegram needs no secret), so anyone
    could sign "initData" with it: it proves nothing on a public site.
    """
    from botdialogs.engine.bots import bot_token

    if get_settings().bot(bot).is_local and not django_settings.DEBUG:
        raise LocalBotRefused(
            f"Bot {bot!r} has no token (local Telegram): its Mini App data is refused while "
            "DEBUG is off, since anyone can sign it"
        )
    return bot_token(bot)


def _other_bot_signed(fields: Mapping[str, str], bot: str) -> str | None:
    """The name of another configured bot whose token signed ``fields``, if any."""
    for name, other in get_settings().bots.items():
        if name == bot or (other.is_local and not django_settings.DEBUG):
            continue
        try:
            check_hash(fields, token_for(name))
        except BadHash:
            continue
        return name
    return None


def verify_init_data(
    init_data: str | bytes, bot: str, *, now: float | None = None
) -> WebAppInitData:
    """``initData`` of one of this site's bots, checked with its token (the HMAC scheme).

    Raises :class:`MalformedInitData` (400), :class:`BadHash`, :class:`WrongBot` (signed by
    another bot of this site), :class:`InitDataExpired` (older than
    ``WEBAPP_INIT_DATA_MAX_AGE``) or :class:`LocalBotRefused` (403s).
    """
    settings = get_settings()
    token = token_for(bot)
    fields = parse_fields(init_data, max_bytes=settings.webapp_max_init_data_bytes)
    try:
        check_hash(fields, token)
    except BadHash:
        other = _other_bot_signed(fields, bot)
        if other is not None:
            raise WrongBot(f"initData was signed for bot {other!r}, not {bot!r}") from None
        raise
    check_age(auth_date_of(fields), settings.webapp_init_data_max_age, now=now)
    return init_data_from(fields)


def verify_third_party(
    init_data: str | bytes,
    bot_id: int,
    *,
    public_key: str | None = None,
    now: float | None = None,
) -> WebAppInitData:
    """``initData`` of any bot (``bot_id``), checked with Telegram's Ed25519 signature.

    For pages that serve someone else's bot: no token needed. ``public_key`` defaults to
    ``BOTDIALOGS['TELEGRAM_PUBLIC_KEY']``, else Telegram's production key. Raises as
    :func:`verify_init_data`.
    """
    settings = get_settings()
    key = public_key or settings.telegram_public_key or TELEGRAM_PUBLIC_KEY
    fields = parse_fields(init_data, max_bytes=settings.webapp_max_init_data_bytes)
    check_signature(fields, bot_id, public_key=key)
    check_age(auth_date_of(fields), settings.webapp_init_data_max_age, now=now)
    return init_data_from(fields)
