"""The user side of local Telegram: simulated users write, press buttons and read their chat.

What a user does becomes a real Telegram Update that is POSTed to the bot's webhook URL
(:mod:`botdialogs.localtg.delivery`), exactly as Telegram would: the bot under test runs its
real webhook path. Reading a chat returns what the bot showed, with every message's
revision so a page can poll for changes only.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from botdialogs.exceptions import BotDialogsError
from botdialogs.localtg import delivery
from botdialogs.localtg.accounts import local_bot
from botdialogs.localtg.formatting import utf16_length
from botdialogs.localtg.limits import MAX_TEXT_LENGTH
from botdialogs.localtg.models import (
    LocalBot,
    LocalCallbackQuery,
    LocalChat,
    LocalFile,
    LocalMessage,
)
from botdialogs.localtg.objects import bot_user, chat_json, message_json, user_json
from botdialogs.localtg.revisions import bump


class ChatError(BotDialogsError, ValueError):
    """A user action local Telegram cannot do (no such button, message or chat)."""


#: What a simulated user's profile may set (the rest of a chat is local Telegram's).
PROFILE_FIELDS = ("first_name", "last_name", "username", "language_code")
_PROFILE_LIMITS = {"first_name": 255, "last_name": 255, "username": 64, "language_code": 16}


def clean_profile(profile: dict[str, Any] | None) -> dict[str, str]:
    """The known profile fields of ``profile`` as strings; ChatError for one too long."""
    cleaned = {key: str(profile[key]) for key in PROFILE_FIELDS if profile and key in profile}
    for key, value in cleaned.items():
        if len(value) > _PROFILE_LIMITS[key]:
            raise ChatError(f"{key} is longer than {_PROFILE_LIMITS[key]} characters")
    if "first_name" in cleaned and not cleaned["first_name"].strip():
        raise ChatError("first_name is empty")
    return cleaned


def check_text(text: str) -> str:
    """``text`` if Telegram would take it from a user; ChatError (a 400) if not."""
    if not text.strip():
        raise ChatError("The message is empty")
    if utf16_length(text) > MAX_TEXT_LENGTH:
        raise ChatError(
            f"The message is {utf16_length(text)} UTF-16 code units long; Telegram takes at "
            f"most {MAX_TEXT_LENGTH}"
        )
    return text


@dataclass(frozen=True)
class Delivery:
    """What happened to one user action: the update sent and the webhook's HTTP status."""

    update: dict[str, Any]
    status: int
    message_id: int


def _chat(bot: LocalBot, chat_id: int, profile: dict[str, str] | None = None) -> LocalChat:
    profile = clean_profile(profile)
    chat, created = LocalChat.objects.select_for_update().get_or_create(
        bot=bot, chat_id=chat_id, defaults=profile or {}
    )
    if profile and not created:
        changed = [key for key, value in profile.items() if getattr(chat, key) != value]
        for key in changed:
            setattr(chat, key, profile[key])
        if changed:
            chat.save(update_fields=changed)
    return chat


def next_update_id(bot: LocalBot) -> int:
    """The bot's next update id (its row locked until the transaction ends)."""
    locked = LocalBot.objects.select_for_update().get(pk=bot.pk)
    update_id = locked.next_update_id
    locked.next_update_id += 1
    locked.save(update_fields=["next_update_id"])
    return update_id


def record_user_message(
    bot_name: str, chat_id: int, text: str, profile: dict[str, str] | None = None
) -> tuple[dict[str, Any], int]:
    """Store a user's text message; returns the Update that carries it and its message id."""
    check_text(text)
    with transaction.atomic():
        bot = local_bot(bot_name)
        chat = _chat(bot, chat_id, profile)
        # Writing to a bot unblocks it, as in Telegram.
        chat.blocked_bot = False
        message_id = chat.take_message_id("blocked_bot")
        message = LocalMessage.objects.create(
            chat=chat, message_id=message_id, text=text, revision=bump(chat)
        )
        update = {"update_id": next_update_id(bot), "message": message_json(message)}
    return update, message_id


def find_button(
    chat: LocalChat, text: str | None = None, data: str | None = None, message_id: int | None = None
) -> tuple[LocalMessage, str]:
    """The newest bot message with an inline button labelled ``text`` (or with ``data``)."""
    messages = LocalMessage.objects.filter(chat=chat, from_bot=True, is_deleted=False)
    if message_id is not None:
        messages = messages.filter(message_id=message_id)
    for message in messages.exclude(reply_markup=None).order_by("-message_id"):
        for row in (message.reply_markup or {}).get("inline_keyboard", []):
            for button in row:
                if "callback_data" not in button:
                    continue
                if (text is not None and button.get("text") == text) or (
                    data is not None and button["callback_data"] == data
                ):
                    return message, button["callback_data"]
    raise ChatError(f"No button {text or data!r} in chat {chat.chat_id}")


def record_press(
    bot_name: str,
    chat_id: int,
    text: str | None = None,
    data: str | None = None,
    message_id: int | None = None,
) -> tuple[dict[str, Any], int]:
    """Store a press on an inline button; returns the Update carrying the callback query."""
    with transaction.atomic():
        bot = local_bot(bot_name)
        chat = LocalChat.objects.select_for_update().filter(bot=bot, chat_id=chat_id).first()
        if chat is None:
            raise ChatError(f"No chat {chat_id} with bot {bot_name!r}")
        message, callback_data = find_button(chat, text=text, data=data, message_id=message_id)
        query = LocalCallbackQuery.objects.create(
            query_id=secrets.token_hex(8),
            chat=chat,
            message_id=message.message_id,
            data=callback_data,
        )
        update = {
            "update_id": next_update_id(bot),
            "callback_query": {
                "id": query.query_id,
                "from": user_json(chat),
                "message": message_json(message),
                "chat_instance": str(chat.chat_id),
                "data": callback_data,
            },
        }
    return update, message.message_id


def open_chat(bot_name: str, chat_id: int, profile: dict[str, Any]) -> LocalChat:
    """The chat of a simulated user (made with ``profile``, or its profile updated)."""
    with transaction.atomic():
        return _chat(local_bot(bot_name), chat_id, clean_profile(profile))


def find_chat(bot_name: str, chat_id: int) -> LocalChat:
    """An existing chat; ChatError when the user never wrote to the bot."""
    chat = LocalChat.objects.filter(bot=local_bot(bot_name), chat_id=chat_id).first()
    if chat is None:
        raise ChatError(f"No chat {chat_id} with bot {bot_name!r}")
    return chat


def _file_view(file: LocalFile | None, file_id: str) -> dict[str, Any]:
    if file is None:
        return {"file_id": file_id, "name": "", "mime_type": "", "size": 0, "kept": False}
    return {
        "file_id": file_id,
        "name": file.file_name,
        "mime_type": file.mime_type,
        "size": file.size,
        "kept": bool(getattr(file, "kept", False)),
    }


def message_view(
    message: LocalMessage, files: Mapping[str, LocalFile] | None = None
) -> dict[str, Any]:
    """A message as the chat page and the test kit read it."""
    keyboard = (message.reply_markup or {}).get("inline_keyboard", [])
    files = files or {}
    shown: dict[str, Any] = {}
    if message.photo_file_id:
        shown["photo_file"] = _file_view(files.get(message.photo_file_id), message.photo_file_id)
    if message.document_file_id:
        shown["document_file"] = _file_view(
            files.get(message.document_file_id), message.document_file_id
        )
    return {
        **shown,
        "message_id": message.message_id,
        "from_bot": message.from_bot,
        "text": message.text,
        "caption": message.caption,
        "entities": message.entities or [],
        "photo": message.photo_file_id,
        "document": message.document_file_id,
        "buttons": [[button.get("text", "") for button in row] for row in keyboard],
        "reply_markup": message.reply_markup,
        "edit_count": message.edit_count,
        "deleted": message.is_deleted,
        "revision": message.revision,
        "date": message.date.isoformat(),
    }


def read_chat(bot_name: str, chat_id: int, since: int = 0) -> dict[str, Any]:
    """The chat's revision and its messages changed after revision ``since`` (all for 0)."""
    bot = local_bot(bot_name)
    chat = LocalChat.objects.filter(bot=bot, chat_id=chat_id).first()
    if chat is None:
        return {"revision": 0, "messages": [], "callback_answers": []}
    messages = list(
        LocalMessage.objects.filter(chat=chat, revision__gt=since).order_by("message_id")
    )
    answers = LocalCallbackQuery.objects.filter(chat=chat, answered=True).order_by("pk")
    file_ids = {m.photo_file_id or m.document_file_id for m in messages} - {""}
    files = {
        file.file_id: file
        for file in LocalFile.objects.filter(file_id__in=file_ids)
        .defer("content")
        .annotate(kept=Q(content__isnull=False))
    }
    return {
        "revision": chat.revision,
        "blocked": chat.blocked_bot,
        "messages": [message_view(message, files) for message in messages],
        "callback_answers": [
            {
                "data": a.data,
                "text": a.answer_text,
                "show_alert": a.show_alert,
                "message_id": a.message_id,
                "revision": a.revision,
            }
            for a in answers
        ],
    }


def set_blocked(bot_name: str, chat_id: int, blocked: bool) -> dict[str, Any] | None:
    """Make the simulated user block (or unblock) the bot: its sends then get 403.

    Returns the ``my_chat_member`` update Telegram sends for the change (None: no change).
    """
    with transaction.atomic():
        bot = local_bot(bot_name)
        chat = _chat(bot, chat_id)
        if chat.blocked_bot == blocked:
            return None
        chat.blocked_bot = blocked
        chat.save(update_fields=["blocked_bot"])
        # Not a message, but the chat's pages show it: they hear of it like a change.
        bump(chat)
        statuses = ("member", "kicked") if blocked else ("kicked", "member")
        # A kicked member carries until_date (0: for ever), as Telegram sends it.
        member: list[dict[str, Any]] = [
            {"status": status, "user": bot_user(bot)} for status in statuses
        ]
        member[statuses.index("kicked")]["until_date"] = 0
        change = {
            "chat": chat_json(chat),
            "from": user_json(chat),
            "date": int(timezone.now().timestamp()),
            "old_chat_member": member[0],
            "new_chat_member": member[1],
        }
        return {"update_id": next_update_id(bot), "my_chat_member": change}


async def block(bot_name: str, chat_id: int, blocked: bool) -> int:
    """The user blocks (or unblocks) the bot; Telegram's ``my_chat_member`` goes to its
    webhook. Returns the webhook's status (0: nothing changed, nothing delivered)."""
    update = await sync_to_async(set_blocked)(bot_name, chat_id, blocked)
    return 0 if update is None else await delivery.deliver(bot_name, update)


def set_rate_limited(bot_name: str, enabled: bool) -> None:
    """Switch Telegram's flood limits (429 answers) on or off for one local bot."""
    with transaction.atomic():
        bot = LocalBot.objects.select_for_update().get(pk=local_bot(bot_name).pk)
        bot.rate_limited = enabled
        bot.bucket_tokens, bot.bucket_updated = 30.0, timezone.now()
        bot.save(update_fields=["rate_limited", "bucket_tokens", "bucket_updated"])
        LocalChat.objects.filter(bot=bot).update(bucket_tokens=3.0, bucket_updated=None)


async def send_message(
    bot_name: str, chat_id: int, text: str, profile: dict[str, str] | None = None
) -> Delivery:
    """A simulated user writes ``text``; returns after the bot's webhook answered.

    ChatError (before anything is stored) for an empty text or one over 4096 characters.
    """
    update, message_id = await sync_to_async(record_user_message)(bot_name, chat_id, text, profile)
    status = await delivery.deliver(bot_name, update)
    return Delivery(update=update, status=status, message_id=message_id)


async def press_button(
    bot_name: str,
    chat_id: int,
    text: str | None = None,
    data: str | None = None,
    message_id: int | None = None,
) -> Delivery:
    """A simulated user presses a button (by its text or callback data)."""
    update, pressed = await sync_to_async(record_press)(bot_name, chat_id, text, data, message_id)
    status = await delivery.deliver(bot_name, update)
    return Delivery(update=update, status=status, message_id=pressed)
