"""What the admin pages of stored dialog state share: fast lists, id search, locked writes.

The pages themselves live by what they show: chats (:mod:`.chats`), dialog stacks and
contexts (:mod:`.dialogs`), plain FSM records (:mod:`.fsm`). All are built for big tables:
lists order by an indexed column, count at most ``COUNT_LIMIT`` rows, filter by bot and state
without DISTINCT queries, and search by exact id or username only (no ``LIKE`` over a million
rows). Writes go through :mod:`botdialogs.admin.repair`, under the chat lock. Fields whose
edit would corrupt a stack (intents, ids, keys, states of contexts) are read-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import formats, timezone
from django.utils.timesince import timesince

from botdialogs.admin import big_tables
from botdialogs.admin.big_tables import (
    USERNAME_MATCHES,
    CappedCountPaginator,
    NulSafeAdminMixin,
    as_bigint,
    matching_usernames,
)
from botdialogs.admin.repair import chat_scope_of, chat_scopes_of, chat_write
from botdialogs.conf import get_settings
from botdialogs.engine.bots import bot_name_for_id, get_storage
from botdialogs.models import TelegramChat
from botdialogs.storage.storage import SEEN_REFRESH

#: "Last seen" is written at most every SEEN_REFRESH (updates stay write-free): say so.
LAST_SEEN = f"last seen (updated at most every {SEEN_REFRESH.seconds // 60} min)"

#: The reset's confirmation page, the same from the chats list and the stacks list.
RESET_PAGE = {
    "action": "reset_dialogs",
    "title": "Reset dialogs?",
    "button": "Yes, reset their dialogs",
}


def without_single_bot(columns: Any) -> tuple[str, ...]:
    """The list's columns, without "bot" when the site has one bot (its filter stays)."""
    if len(get_settings().bots) > 1:
        return tuple(columns)
    return tuple(column for column in columns if column != "bot")


def seen_text(when: datetime | None) -> str:
    """``Nov. 26, 2026, 12:51 a.m. (3 minutes ago)``, in the site's time zone."""
    if when is None:
        return "never"
    return f"{formats.localize(timezone.localtime(when))} ({timesince(when)} ago)"


def last_seen_of(row: Any) -> str:
    """When the row's user last wrote to the bot (from their chat record)."""
    return seen_text(
        TelegramChat.objects.filter(bot_id=row.bot_id, chat_id=row.chat_id, user_id=row.user_id)
        .values_list("last_seen", flat=True)
        .first()
    )


class StorageAdmin(NulSafeAdminMixin, admin.ModelAdmin):
    """What every botdialogs admin shares: fast lists, id search, locked writes."""

    change_list_template = "botdialogs/admin/change_list.html"
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    search_fields = ("=user_id", "=chat_id")  # shows the box; get_search_results does the work
    search_help_text = "Exact user id, chat id or @username."

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Exact ids (numbers) and exact usernames; never a scan of the table."""
        terms = search_term.split()
        if not terms:
            return queryset, False
        where = Q()
        names: set[str] = set()
        for term in terms:
            number = as_bigint(term)
            if number is not None:
                where |= Q(user_id=number) | Q(chat_id=number)
            else:
                names |= matching_usernames(term)
        if names:
            where |= self.username_q(names)
        return (queryset.filter(where) if where else queryset.none()), False

    def username_q(self, names: set[str]) -> Q:
        """Rows of the users with these usernames (found in TelegramChat first)."""
        user_ids = list(
            TelegramChat.objects.filter(username__in=names)
            .order_by()
            .values_list("user_id", flat=True)
            .distinct()[:USERNAME_MATCHES]
        )
        return Q(user_id__in=user_ids) | Q(chat_id__in=user_ids) if user_ids else Q(pk__in=[])

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        from botdialogs.storage import DjangoStorage

        storage = get_storage()
        if not isinstance(storage, DjangoStorage):
            messages.warning(
                request,
                f"Dialog state is not in the database: BOTDIALOGS['STORAGE'] is "
                f"{type(storage).__name__}, so the bots do not read or write these rows. "
                "Only rows stored while DjangoStorage was configured are shown.",
            )
        return super().changelist_view(
            request, {**(extra_context or {}), "count_limit": big_tables.COUNT_LIMIT}
        )

    @admin.display(description="bot", ordering="bot_id")
    def bot(self, obj: Any) -> str:
        return bot_name_for_id(obj.bot_id) or str(obj.bot_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # rows come from the bots

    def save_model(
        self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool
    ) -> None:
        """Write only the fields the form changed, under the chat lock."""
        fields = [
            name for name in form.changed_data if name not in self.get_readonly_fields(request, obj)
        ]
        if not fields:
            return
        if hasattr(obj, "updated_at"):
            fields.append("updated_at")
        with chat_write(type(obj), [chat_scope_of(obj)]):
            obj.save(update_fields=fields)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with chat_write(type(obj), [chat_scope_of(obj)]):
            obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with chat_write(queryset.model, chat_scopes_of(queryset)):
            queryset.delete()
