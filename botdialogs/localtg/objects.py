"""Telegram objects as the Bot API returns them (User, Chat, Message), from local rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botdialogs.localtg.models import LocalBot, LocalChat, LocalMessage


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
