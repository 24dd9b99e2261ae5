"""The Bot API side of local Telegram: what a bot's ``POST /localtg/bot<token>/<method>`` does.

Each method is a sync function of ``(bot, params, files)`` in the :data:`METHODS` table that
runs in one transaction and returns the Bot API ``result``, or raises
:class:`~botdialogs.localtg.errors.BotApiError` with Telegram's code and description.
Parameters arrive as aiogram sends them (form fields, JSON values as strings) or as a JSON
body; :func:`call` normalises them first. Telegram's objects are built in :mod:`.objects`,
its limits kept in :mod:`.limits`, uploads in :mod:`.files`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from botdialogs.localtg.accounts import local_bot_for_token
from botdialogs.localtg.errors import CANT_BE_EDITED, EDIT_NOT_FOUND, NOT_MODIFIED, BotApiError
from botdialogs.localtg.files import file_id_of
from botdialogs.localtg.formatting import FormattingError, formatted
from botdialogs.localtg.invoices import (
    answer_pre_checkout_query,
    checked_invoice,
    pay_markup,
    refund_star_payment,
    store_invoice,
)
from botdialogs.localtg.limits import (
    MAX_TEXT_LENGTH,
    check_answerable,
    check_caption_length,
    check_rate,
    check_reply_markup,
    check_text_length,
)
from botdialogs.localtg.models import LocalBot, LocalCallbackQuery, LocalChat, LocalMessage
from botdialogs.localtg.objects import bot_user, message_json
from botdialogs.localtg.revisions import bump

#: Parameters Telegram takes as JSON-serialised objects (aiogram sends them as strings).
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "link_preview_options",
        "result",
        "prices",
    }
)


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


def _chat(bot: LocalBot, params: Mapping[str, Any]) -> LocalChat:
    chat_id = _int(params, "chat_id")
    chat = LocalChat.objects.select_for_update().filter(bot=bot, chat_id=chat_id).first()
    if chat is None:
        raise BotApiError(400, "Bad Request: chat not found")
    if chat.blocked_bot:
        raise BotApiError(403, "Forbidden: bot was blocked by the user")
    return chat


def _markup(params: Mapping[str, Any]) -> Any:
    """The reply_markup parameter (None for none), its buttons checked as Telegram does."""
    markup = params.get("reply_markup") or None
    check_reply_markup(markup)
    return markup


def _new_bot_message(bot: LocalBot, params: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    markup = _markup(params)
    chat = _chat(bot, params)
    check_rate(bot, chat)
    message_id = chat.take_message_id()
    message = LocalMessage.objects.create(
        chat=chat,
        message_id=message_id,
        from_bot=True,
        reply_markup=markup,
        revision=bump(chat),
        **fields,
    )
    return message_json(message)


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
    check_text_length(text)
    return text, entities


def _caption(params: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
    caption, entities = _formatted(params, "caption")
    check_caption_length(caption)
    return caption, entities


def _edited_message(bot: LocalBot, params: Mapping[str, Any]) -> LocalMessage:
    if params.get("inline_message_id"):
        raise BotApiError(400, "Bad Request: inline messages are not emulated")
    chat = _chat(bot, params)
    message = LocalMessage.objects.filter(
        chat=chat, message_id=_int(params, "message_id"), is_deleted=False
    ).first()
    if message is None:
        # Message ids are per chat: another chat's message is not found in this one.
        raise BotApiError(400, EDIT_NOT_FOUND)
    if not message.from_bot:
        raise BotApiError(400, CANT_BE_EDITED)
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
    file_id = file_id_of(params, "photo", files)
    caption, entities = _caption(params)
    return _new_bot_message(bot, params, photo_file_id=file_id, caption=caption, entities=entities)


def send_document(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """sendDocument (by file_id or upload)."""
    file_id = file_id_of(params, "document", files)
    caption, entities = _caption(params)
    return _new_bot_message(
        bot, params, document_file_id=file_id, caption=caption, entities=entities
    )


def edit_message_text(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """editMessageText."""
    message = _edited_message(bot, params)
    text, entities = _text(params)
    if not message.text:
        raise BotApiError(400, "Bad Request: there is no text in the message to edit")
    changes = {"text": text, "entities": entities, "reply_markup": _markup(params)}
    return _save_edit(message, changes)


def edit_message_caption(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """editMessageCaption."""
    message = _edited_message(bot, params)
    if not (message.photo_file_id or message.document_file_id):
        raise BotApiError(400, "Bad Request: there is no caption in the message to edit")
    caption, entities = _caption(params)
    changes = {"caption": caption, "entities": entities, "reply_markup": _markup(params)}
    return _save_edit(message, changes)


def edit_message_reply_markup(
    bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]
) -> Any:
    """editMessageReplyMarkup (no reply_markup removes the keyboard)."""
    message = _edited_message(bot, params)
    return _save_edit(message, {"reply_markup": _markup(params)})


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
    query = check_answerable(
        LocalCallbackQuery.objects.filter(
            query_id=str(params.get("callback_query_id") or ""), chat__bot=bot
        ).first()
    )
    query.answered = True
    query.answer_text = str(params.get("text") or "")
    query.show_alert = _flag(params, "show_alert")
    # The chat's pages show the answer (a toast or an alert): it is a change of the chat.
    chat = LocalChat.objects.select_for_update().get(pk=query.chat_id)
    query.revision = bump(chat)
    query.save(update_fields=["answered", "answer_text", "show_alert", "revision"])
    return True


def answer_web_app_query(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """answerWebAppQuery: an article's text lands in the chat whose Mini App asked.

    Local query ids name their chat (``LT<chat id>-<random>``, :mod:`.webapps`).
    """
    query_id = str(params.get("web_app_query_id") or "")
    chat_id, sep, _ = query_id.removeprefix("LT").partition("-")
    result = params.get("result")
    if not query_id.startswith("LT") or not sep or not chat_id.lstrip("-").isdigit():
        raise BotApiError(
            400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
        )
    if not isinstance(result, dict):
        raise BotApiError(400, "Bad Request: can't parse inline query result")
    content = result.get("input_message_content") or {}
    text = content.get("message_text") if isinstance(content, dict) else None
    if not isinstance(text, str) or not text:
        raise BotApiError(400, "Bad Request: local Telegram shows article results with text only")
    message = _new_bot_message(
        bot,
        {"chat_id": chat_id, "reply_markup": result.get("reply_markup")},
        text=text[:MAX_TEXT_LENGTH],
    )
    return {"inline_message_id": f"LT{chat_id}_{message['message_id']}"}


def send_invoice(bot: LocalBot, params: Mapping[str, Any], files: Mapping[str, Any]) -> Any:
    """sendInvoice (Telegram Stars): a message with the Pay button (:mod:`.invoices`)."""
    invoice = checked_invoice(params)
    text = f"{invoice['title']}\n{invoice['description']}"
    # The Pay button is Telegram's own: it is not a markup a bot could send.
    sent = _new_bot_message(bot, {**params, "reply_markup": None}, text=text)
    LocalMessage.objects.filter(
        chat__bot=bot, chat__chat_id=sent["chat"]["id"], message_id=sent["message_id"]
    ).update(reply_markup=pay_markup(invoice["amount"]))
    sent["reply_markup"] = pay_markup(invoice["amount"])
    return store_invoice(bot, sent, invoice)


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
    "answerwebappquery": answer_web_app_query,
    "sendinvoice": send_invoice,
    "answerprecheckoutquery": answer_pre_checkout_query,
    "refundstarpayment": refund_star_payment,
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
