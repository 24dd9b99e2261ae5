"""Who a stored row belongs to, for support: the Telegram user's name and username, a link to
their chat record, and a link to their conversation in the chat playground (local bots).

Names live in :class:`~botdialogs.models.TelegramChat` (the bots write them as users talk).
List pages read them with :func:`with_people`: subqueries in the list's one query, so the
number of queries does not grow with the rows shown. The playground is an optional app
(``botdialogs.localtg``) that this package never imports: its page is found by URL name
(``localtg:chat``), and a site without it simply shows no link.
"""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from botdialogs.conf import get_settings
from botdialogs.engine.bots import bot_name_for_id
from botdialogs.exceptions import UnknownBot
from botdialogs.models import TelegramChat

#: Annotations :func:`with_people` adds, and the TelegramChat column each one reads.
PERSON_FIELDS = {
    "person_chat_pk": "pk",
    "person_first_name": "first_name",
    "person_last_name": "last_name",
    "person_username": "username",
}


def with_people(queryset: QuerySet) -> QuerySet:
    """``queryset`` (rows with bot_id, chat_id, user_id) with the user's names annotated."""
    chats = TelegramChat.objects.filter(
        bot_id=OuterRef("bot_id"), chat_id=OuterRef("chat_id"), user_id=OuterRef("user_id")
    ).order_by()
    return queryset.annotate(
        **{name: Subquery(chats.values(column)[:1]) for name, column in PERSON_FIELDS.items()}
    )


def person_of(row: Any) -> dict[str, Any]:
    """The user's chat pk and names: from :func:`with_people`'s annotations or one query."""
    if hasattr(row, "person_chat_pk"):
        return {name: getattr(row, name) for name in PERSON_FIELDS}
    chat = (
        TelegramChat.objects.filter(bot_id=row.bot_id, chat_id=row.chat_id, user_id=row.user_id)
        .only(*PERSON_FIELDS.values())
        .first()
    )
    return {name: getattr(chat, column, None) for name, column in PERSON_FIELDS.items()}


def full_name(person: dict[str, Any]) -> str:
    """``Ann Smith`` (empty when the bot never saw a name)."""
    names = (person.get("person_first_name"), person.get("person_last_name"))
    return " ".join(name for name in names if name)


def short_name(row: Any) -> str:
    """How messages name the user: ``Ann (chat 1001)``, ``@ann (chat 1001)``, ``user 7 …``."""
    person = person_of(row)
    who = full_name(person) or (
        f"@{person['person_username']}" if person.get("person_username") else f"user {row.user_id}"
    )
    return f"{who} (chat {row.chat_id})"


def playground_url(bot_id: int, chat_id: int) -> str | None:
    """The chat's page in the chat playground, for a bot without a token; else None."""
    name = bot_name_for_id(bot_id)
    if name is None:
        return None
    try:
        if not get_settings().bot(name).is_local:
            return None  # a real Telegram bot: its chats are in the users' Telegram apps
    except UnknownBot:
        return None
    try:
        return reverse("localtg:chat", kwargs={"name": name, "chat_id": chat_id})
    except NoReverseMatch:
        return None  # the site does not mount local Telegram's pages


def person_html(row: Any, *, playground: bool = True) -> str:
    """Name and @username, linked to their chat record, and a "chat" link to the playground."""
    person = person_of(row)
    name = full_name(person) or f"user {row.user_id}"
    parts: list[tuple[str, ...]] = []
    if person.get("person_chat_pk") is not None:
        record = reverse("admin:botdialogs_telegramchat_change", args=[person["person_chat_pk"]])
        parts.append(('<a href="{}" title="Their chat record">{}</a>', record, name))
    else:
        parts.append(("{}", name))
    if person.get("person_username"):
        parts.append(("@{}", person["person_username"]))
    chat = playground_url(row.bot_id, row.chat_id) if playground else None
    if chat:
        title = "Their conversation in the chat playground"
        parts.append(('<a href="{}" title="{}">chat</a>', chat, title))
    return format_html_join(" ", "{}", ((format_html(*part),) for part in parts))
