"""Which local bot a Bot API token or a bot name is: the LocalBot row, made on first use."""

from __future__ import annotations

from botdialogs.conf import get_settings
from botdialogs.exceptions import UnknownBot
from botdialogs.localtg.errors import BotApiError
from botdialogs.localtg.models import LocalBot


def local_bot_for_token(token: str) -> LocalBot:
    """The LocalBot of a local token ``<local_bot_id>:local-<name>``; 401 for any other."""
    from botdialogs.engine.bots import bot_token, local_bot_id

    _, _, secret = token.partition(":")
    name = secret.removeprefix("local-")
    try:
        known = get_settings().bot(name).is_local and bot_token(name) == token
    except UnknownBot:
        known = False
    if not known or not secret.startswith("local-"):
        raise BotApiError(401, "Unauthorized")
    bot_id = local_bot_id(name)
    bot, _ = LocalBot.objects.get_or_create(name=name, defaults={"token": token, "bot_id": bot_id})
    if (bot.token, bot.bot_id) != (token, bot_id):
        # A row from before local bot ids changed (CRC32 ids could collide): follow the token.
        bot.token, bot.bot_id = token, bot_id
        bot.save(update_fields=["token", "bot_id"])
    return bot


def local_bot(bot_name: str) -> LocalBot:
    """The LocalBot row of a configured bot without a token (made on first use)."""
    from botdialogs.engine.bots import bot_token

    if not get_settings().bot(bot_name).is_local:
        raise UnknownBot(f"Bot {bot_name!r} has a real token: local Telegram does not serve it")
    return local_bot_for_token(bot_token(bot_name))
