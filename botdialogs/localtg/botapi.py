"""The Bot API side of local Telegram: what a bot's ``POST /localtg/bot<token>/<method>`` does.

Each method is a sync function of ``(bot, params)`` that runs in one transaction and returns
the Bot API ``result``, or raises :class:`BotApiError` with Telegram's code and description.
Parameters arrive as aiogram sends them (form fields, JSON values as strings) or as a JSON
body; :func:`call` normalises them first.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from botdialogs.conf import get_settings
from botdialogs.exceptions import BotDialogsError, UnknownBot
from botdialogs.localtg.formatting import FormattingError, formatted
from botdialogs.localtg.models import (
    LocalBot,
    LocalCallbackQuery,
    LocalChat,
    LocalFile,
    LocalMessage,
)
from botdialogs.localtg.revisions import bump

#: Parameters Telegram takes as JSON-serialised objects (aiogram sends them as strings).
JSON_PARAMS = frozenset(
    {"reply_markup", "entities", "caption_entities", "allowed_updates", "link_preview_options"}
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
# Token buckets: Telegram lets a chat burst a little over 1 message/s, a bot ~30 messages/s.
CHAT_RATE, CHAT_BURST = 1.0, 3.0
BOT_RATE, BOT_BURST = 30.0, 30.0
#: Telegram's longest message text, in characters.
MAX_TEXT_LENGTH = 4096
#: Uploads up to this size keep their bytes, so the chat playground can show them.
MAX_KEPT_FILE_SIZE = 10 * 1024 * 1024


class BotApiError(BotDialogsError):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def as_json(self) -> dict[str, Any]:
        """The error as Telegram spells it."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


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


def normalise(params: Mapping[str, Any]) -> dict[str, Any]:
    """Decode the JSON-valued parameters aiogram sends as form strings."""
    result = dict(params)
    for key in JSON_PARAMS & result.keys():
        if isinstance(result[key], str):
            try:
                result[key] = json.loads(result[key])
            except ValueError:
                raise BotApiError(400, f"Bad Request: can't parse {key} JSON object") from None
    return result


def _int(params: Mapping[str, Any], key: str) -> int:
    try:
        return int(params[key])
    except KeyError:
        raise BotApiError(400, f"Bad Request: {key} is empty") from None
    except (TypeError, ValueError):
        raise BotApiError(400, f"Bad Request: invalid {key} specified") from None


def _flag(params: Mapping[str, Any], key: str) -> bool:
    value = params.get(key, False)
    return value in (True, "true", "True", "1", 1)


def bot_user(bot: LocalBot) -> dict[str, Any]:
    """The bot as a Telegram User object."""
    return {
        "id": bot.bot_id,
        "is_bot": True,
        "first_name": bot.name.replace("_", " ").title(),
        "username": f"{bot.name}_local_bot",
    }


def chat_json(chat: LocalChat) -> dict[str, Any]:
    """A private Chat object."""
    data = {"id": chat.chat_id, "type": "private", "first_name": chat.first_name}
    if chat.username:
        data["username"] = chat.username
    return data


def user_json(chat: LocalChat) -> dict[str, Any]:
    """The chat's simulated user as a User object."""
    data = {
        "id": chat.chat_id,
        "is_bot": False,
        "first_name": chat.first_name,
        "language_code": chat.language_code,
    }
    if chat.last_name:
        data["last_name"] = chat.last_name
    if chat.username:
        data["username"] = chat.username
    return data


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def message_json(message: LocalMessage) -> dict[str, Any]:
    """A Message object as the Bot API returns it."""
    chat = message.chat
    data: dict[str, Any] = {
        "message_id": message.message_id,
        "date": _timestamp(message.date),
        "chat": chat_json(chat),
        "from": bot_user(chat.bot) if message.from_bot else user_json(chat),
    }
    if message.text:
        data["text"] = message.text
    if message.caption:
        data["caption"] = message.caption
    if message.entities:
        data["caption_entities" if message.caption else "entities"] = message.entities
    if message.photo_file_id:
        unique = message.photo_file_id[-16:]
        data["photo"] = [
            {"file_id": message.photo_file_id, "file_unique_id": unique, "width": 1, "height": 1}
        ]
    if message.document_file_id:
        unique = message.document_file_id[-16:]
        data["document"] = {"file_id": message.document_file_id, "file_unique_id": unique}
    if message.reply_markup and "inline_keyboard" in message.reply_markup:
        # Telegram's Message carries inline keyboards only; a reply keyboard (or its
        # removal) stays in the chat, not in the message object.
        data["reply_markup"] = message.reply_markup
    if message.edited_at:
        data["edit_date"] = _timestamp(message.edited_at)
    return data


def _chat(bot: LocalBot, params: Mapping[str, Any]) -> LocalChat:
    chat_id = _int(params, "chat_id")
    chat = LocalChat.objects.select_for_update().filter(bot=bot, chat_id=chat_id).first()
    if chat is None:
        raise BotApiError(400, "Bad Request: chat not found")
    if chat.blocked_bot:
        raise BotApiError(403, "Forbidden: bot was blocked by the user")
    return chat


def _take_token(holder: LocalBot | LocalChat, rate: float, burst: float) -> int | None:
    """Spend one send from ``holder``'s bucket; the seconds to wait if it is empty."""
    now = timezone.now()
    tokens = holder.bucket_tokens
    if holder.bucket_updated is not None:
        tokens = min(burst, tokens + (now - holder.bucket_updated).total_seconds() * rate)
    if tokens < 1:
        return max(1, math.ceil((1 - tokens) / rate))
    holder.bucket_tokens = tokens - 1
    holder.bucket_updated = now
    holder.save(update_fields=["bucket_tokens", "bucket_updated"])
    return None


def _check_rate(bot: LocalBot, chat: LocalChat) -> None:
    if not bot.rate_limited:
        return
    locked_bot = LocalBot.objects.select_for_update().get(pk=bot.pk)
    for holder, rate, burst in ((locked_bot, BOT_RATE, BOT_BURST), (chat, CHAT_RATE, CHAT_BURST)):
        wait = _take_token(holder, rate, burst)
        if wait is not None:
            raise BotApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)


def _new_bot_message(bot: LocalBot, params: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    chat = _chat(bot, params)
    _check_rate(bot, chat)
    message_id = chat.next_message_id
    chat.next_message_id += 1
    chat.save(update_fields=["next_message_id"])
    message = LocalMessage.objects.create(
        chat=chat,
        message_id=message_id,
        from_bot=True,
        reply_markup=params.get("reply_markup") or None,
        revision=bump(chat),
        **fields,
    )
    return message_json(message)


def _file_id(params: Mapping[str, Any], key: str, files: Mapping[str, Any]) -> str:
    """A file_id for ``params[key]``: given as is, or minted for an upload."""
    value = params.get(key)
    if not value:
        raise BotApiError(400, f"Bad Request: there is no {key} in the request")
    value = str(value)
    if not value.startswith("attach://"):
        return value
    upload = files.get(value.removeprefix("attach://"))
    if upload is None:
        raise BotApiError(400, f"Bad Request: wrong file identifier for {key}")
    file_id = f"local-{key}-{secrets.token_urlsafe(18)}"
    size = getattr(upload, "size", 0) or 0
    LocalFile.objects.create(
        file_id=file_id,
        file_unique_id=file_id[-16:],
        kind=key,
        file_name=getattr(upload, "name", "") or "",
        mime_type=getattr(upload, "content_type", "") or "",
        size=size,
        content=_kept_bytes(upload, size),
    )
    return file_id


def _kept_bytes(upload: Any, size: int) -> bytes | None:
    """The upload's bytes when they are small enough to keep in the database."""
    if size > MAX_KEPT_FILE_SIZE or not hasattr(upload, "read"):
        return None
    if hasattr(upload, "seek"):
        upload.seek(0)
    content = upload.read(MAX_KEPT_FILE_SIZE + 1)
    return bytes(content) if len(content) <= MAX_KEPT_FILE_SIZE else None


def _formatted(params: Mapping[str, Any], key: str) -> tuple[str, list[dict[str, Any]] | None]:
    """The plain text and entities of ``params[key]`` (text or caption), as Telegram keeps it."""
    entities_key = "entities" if key == "text" else "caption_entities"
    try:
        text, entities = formatted(
            str(params.get(key) or ""), params.get("parse_mode"), params.get(entities_key)
        )
    except FormattingError as error:
        raise BotApiError(400, f"Bad Request: can't parse entities: {error}") from None
    return text, entities or None


def _text(params: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
    text, entities = _formatted(params, "text")
    if not text:
        raise BotApiError(400, "Bad Request: message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise BotApiError(400, "Bad Request: message is too long")
    return text, entities


def _edited_message(bot: LocalBot, params: Mapping[str, Any]) -> LocalMessage:
    if params.get("inline_message_id"):
        raise BotApiError(400, "Bad Request: inline messages are not emulated")
    chat = _chat(bot, params)
    message = LocalMessage.objects.filter(
        chat=chat, message_id=_int(params, "message_id"), is_deleted=False
    ).first()
    if message is None or not message.from_bot:
        raise BotApiError(400, "Bad Request: message to edit not found")
    return message


def _save_edit(message: LocalMessage, changes: dict[str, Any]) -> dict[str, Any]:
    if all(getattr(message, field) == value for field, value in changes.items()):
        raise BotApiError(400, NOT_MODIFIED)
    for field, value in changes.items():
        setattr(message, field, value)
    message.edit_count += 1
    message.edited_at = timezone.now()
    message.revision = bump(message.chat)
    message.save()
    return message_json(message)


# -- methods ------------------------------------------------------------------------------------
def get_me(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """getMe."""
    return {**bot_user(bot), "can_join_groups": False, "can_read_all_group_messages": False}


def send_message(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """sendMessage."""
    text, entities = _text(params)
    return _new_bot_message(bot, params, text=text, entities=entities)


def send_photo(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """sendPhoto (by file_id or upload)."""
    file_id = _file_id(params, "photo", files)
    caption, entities = _formatted(params, "caption")
    return _new_bot_message(bot, params, photo_file_id=file_id, caption=caption, entities=entities)


def send_document(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """sendDocument (by file_id or upload)."""
    file_id = _file_id(params, "document", files)
    caption, entities = _formatted(params, "caption")
    return _new_bot_message(
        bot, params, document_file_id=file_id, caption=caption, entities=entities
    )


def edit_message_text(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """editMessageText."""
    message = _edited_message(bot, params)
    text, entities = _text(params)
    if not message.text:
        raise BotApiError(400, "Bad Request: there is no text in the message to edit")
    markup = params.get("reply_markup") or None
    return _save_edit(message, {"text": text, "entities": entities, "reply_markup": markup})


def edit_message_caption(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """editMessageCaption."""
    message = _edited_message(bot, params)
    if not (message.photo_file_id or message.document_file_id):
        raise BotApiError(400, "Bad Request: there is no caption in the message to edit")
    caption, entities = _formatted(params, "caption")
    changes = {"caption": caption, "entities": entities, "reply_markup": params.get("reply_markup")}
    return _save_edit(message, changes)


def edit_message_reply_markup(
    bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]
) -> Any:
    """editMessageReplyMarkup (no reply_markup removes the keyboard)."""
    message = _edited_message(bot, params)
    return _save_edit(message, {"reply_markup": params.get("reply_markup") or None})


def delete_message(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """deleteMessage."""
    chat = _chat(bot, params)
    message = LocalMessage.objects.filter(
        chat=chat, message_id=_int(params, "message_id"), is_deleted=False
    ).first()
    if message is None:
        raise BotApiError(400, "Bad Request: message to delete not found")
    message.is_deleted = True
    message.revision = bump(chat)
    message.save(update_fields=["is_deleted", "revision"])
    return True


def answer_callback_query(
    bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]
) -> Any:
    """answerCallbackQuery."""
    query = LocalCallbackQuery.objects.filter(
        query_id=str(params.get("callback_query_id") or ""), chat__bot=bot
    ).first()
    if query is None or query.answered:
        raise BotApiError(
            400,
            "Bad Request: query is too old and response timeout expired or query ID is invalid",
        )
    query.answered = True
    query.answer_text = str(params.get("text") or "")
    query.show_alert = _flag(params, "show_alert")
    # The chat's pages show the answer (a toast or an alert): it is a change of the chat.
    chat = LocalChat.objects.select_for_update().get(pk=query.chat_id)
    query.revision = bump(chat)
    query.save(update_fields=["answered", "answer_text", "show_alert", "revision"])
    return True


def set_webhook(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """setWebhook: where local Telegram delivers this bot's updates."""
    url = str(params.get("url") or "")
    bot.webhook_url = url
    bot.webhook_set = bool(url)
    bot.webhook_secret = str(params.get("secret_token") or "")
    bot.allowed_updates = params.get("allowed_updates")
    bot.save(update_fields=["webhook_url", "webhook_set", "webhook_secret", "allowed_updates"])
    return True


def delete_webhook(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """deleteWebhook: back to the default webhook URL of this server."""
    bot.webhook_url = ""
    bot.webhook_set = False
    bot.webhook_secret = ""
    bot.save(update_fields=["webhook_url", "webhook_set", "webhook_secret"])
    return True


def get_webhook_info(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """getWebhookInfo."""
    info: dict[str, Any] = {
        "url": bot.webhook_url,
        "has_custom_certificate": False,
        "pending_update_count": 0,
    }
    if bot.allowed_updates is not None:
        info["allowed_updates"] = bot.allowed_updates
    return info


def _commands_language(params: Mapping[str, Any]) -> str:
    # Scopes other than the default one are not emulated: every chat shares the list.
    return str(params.get("language_code") or "")


def set_my_commands(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """setMyCommands: the bot's menu of commands for one language (or the default)."""
    commands = params.get("commands")
    if isinstance(commands, str):
        try:
            commands = json.loads(commands)
        except ValueError:
            raise BotApiError(400, "Bad Request: can't parse commands JSON object") from None
    if not isinstance(commands, list) or not all(
        isinstance(c, dict) and c.get("command") and c.get("description") for c in commands
    ):
        raise BotApiError(400, "Bad Request: commands must be a list of command/description")
    bot.commands = {**bot.commands, _commands_language(params): commands}
    bot.save(update_fields=["commands"])
    return True


def get_my_commands(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """getMyCommands: the list of a language, else the default list."""
    return bot.commands.get(_commands_language(params), bot.commands.get("", []))


def delete_my_commands(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """deleteMyCommands."""
    bot.commands = {k: v for k, v in bot.commands.items() if k != _commands_language(params)}
    bot.save(update_fields=["commands"])
    return True


Method = Callable[[LocalBot, Mapping[str, Any], Mapping[str, Any]], Any]
METHODS: dict[str, Method] = {
    "getme": get_me,
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "senddocument": send_document,
    "editmessagetext": edit_message_text,
    "editmessagecaption": edit_message_caption,
    "editmessagereplymarkup": edit_message_reply_markup,
    "deletemessage": delete_message,
    "answercallbackquery": answer_callback_query,
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
    "setmycommands": set_my_commands,
    "getmycommands": get_my_commands,
    "deletemycommands": delete_my_commands,
}


def call(
    token: str, method: str, params: Mapping[str, Any], files: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Run one Bot API call; returns the whole response body (``ok`` true or false)."""
    function = METHODS.get(method.lower())
    try:
        if function is None:
            raise BotApiError(404, "Not Found: method not found")
        with transaction.atomic():
            bot = local_bot_for_token(token)
            result = function(bot, normalise(params), files or {})
    except BotApiError as error:
        return error.as_json()
    return {"ok": True, "result": result}
