"""The admin page of the chats the bots talk to: who, since when, and "Reset dialogs"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from botdialogs.admin.big_tables import BlockedListFilter, BotListFilter
from botdialogs.admin.confirmation import PlannedChange, confirm_then_run
from botdialogs.admin.languages import ChatLanguageAdmin
from botdialogs.admin.people import playground_url, short_name
from botdialogs.admin.repair import RESET_NOTICE, RepairOutcome, plural, reset_for_support
from botdialogs.admin.storage import LAST_SEEN, RESET_PAGE, StorageAdmin, seen_text
from botdialogs.models import DialogStack, TelegramChat


@admin.register(TelegramChat)
class TelegramChatAdmin(ChatLanguageAdmin, StorageAdmin):
    """Who the bots talk to; "Reset dialogs" gives a chat a fresh start."""

    list_display = (
        "__str__",
        "full_name",
        "user_id",
        "chat_id",
        "chat_type",
        "bot",
        "site_user",
        "language_shown",
        "is_blocked",
        "seen",
        "dialogs",
    )
    list_select_related = ("site_user",)
    list_filter = (BotListFilter, BlockedListFilter)
    ordering = ("-last_seen",)
    raw_id_fields = ("site_user",)
    readonly_fields = (
        "bot",
        "bot_id",
        "chat_id",
        "user_id",
        "chat_type",
        "title",
        "username",
        "first_name",
        "last_name",
        "language_code",
        "language_shown",
        "first_seen",
        "seen",
        "dialogs",
    )
    fields = (*readonly_fields, "site_user", "language", "is_blocked")
    actions = ("reset_dialogs",)

    def username_q(self, names: set[str]) -> Q:
        return Q(username__in=names)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the bot writes the row again at the user's next message: not a repair

    @admin.display(description="name")
    def full_name(self, obj: TelegramChat) -> str:
        return " ".join(name for name in (obj.first_name, obj.last_name) if name)

    @admin.display(description=LAST_SEEN, ordering="last_seen")
    def seen(self, obj: TelegramChat) -> str:
        return seen_text(obj.last_seen)

    @admin.display(description="dialogs")
    def dialogs(self, obj: TelegramChat) -> str:
        url = reverse("admin:botdialogs_dialogstack_changelist")
        query = f"?q={obj.chat_id}&bot={obj.bot_id}"
        stacks = format_html('<a href="{}{}">stacks</a>', url, query)
        chat = playground_url(obj.bot_id, obj.chat_id)
        if chat is None:
            return stacks
        return format_html('{} · <a href="{}">chat playground</a>', stacks, chat)

    @admin.action(description="Reset dialogs… (asks first; tells the user)", permissions=["change"])
    def reset_dialogs(
        self, request: HttpRequest, queryset: QuerySet[TelegramChat]
    ) -> TemplateResponse | None:
        def plan(chat: TelegramChat) -> PlannedChange:
            stacks = DialogStack.objects.filter(bot_id=chat.bot_id, chat_id=chat.chat_id)
            count, depth = stacks.count(), sum(stacks.values_list("depth", flat=True))
            return PlannedChange(
                chat.pk,
                short_name(chat),
                f"deletes {plural(count, 'stack')} with {plural(depth, 'open dialog')}; "
                f'their last buttons are removed and they read "{RESET_NOTICE}"',
                refused=count == 0,
            )

        def run(chat: TelegramChat, _seen: str | None) -> RepairOutcome:
            stacks = list(DialogStack.objects.filter(bot_id=chat.bot_id, chat_id=chat.chat_id))
            orphans = Q(bot_id=chat.bot_id, chat_id=chat.chat_id)
            return reset_for_support(stacks, short_name(chat), orphans if stacks else None)

        return confirm_then_run(self, request, queryset, **RESET_PAGE, plan=plan, run=run)
