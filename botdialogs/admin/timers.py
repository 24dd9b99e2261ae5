"""Admin pages for dialog timers: what is due for whom, what failed and why; Cancel, Fire now."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from botdialogs.admin.big_tables import (
    CappedCountPaginator,
    NulSafeAdminMixin,
    ReadOnlyPageMixin,
    as_bigint,
    pretty_json,
)
from botdialogs.models import DialogTimer


class BotNameListFilter(admin.SimpleListFilter):
    """The bots of ``BOTDIALOGS['BOTS']`` by name (no DISTINCT over a big table)."""

    title = "bot"
    parameter_name = "bot"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        from botdialogs.conf import get_settings

        return [(name, name) for name in get_settings().bots]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(bot_name=self.value()) if self.value() else queryset


@admin.register(DialogTimer)
class DialogTimerAdmin(ReadOnlyPageMixin, NulSafeAdminMixin, admin.ModelAdmin):
    """Timers by due time; search by user or chat id; the action shown as JSON."""

    list_display = (
        "id",
        "what",
        "bot_name",
        "chat_id",
        "user_id",
        "key",
        "due_at",
        "status",
        "attempts",
    )
    list_filter = ("status", BotNameListFilter)
    search_fields = ("=user_id", "=chat_id")  # shows the box; get_search_results does the work
    ordering = ("-due_at",)
    # Big tables: a capped count, no full count, and no sort the indexes do not serve.
    paginator = CappedCountPaginator
    show_full_result_count = False
    sortable_by = ("due_at",)
    readonly_fields = [
        *(f.name for f in DialogTimer._meta.fields if f.name != "action"),
        "action_json",
    ]
    exclude = ("action",)
    actions = ("cancel_timers", "fire_now")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Exact user or chat ids (each has an index); anything else finds nothing."""
        where = Q()
        for term in search_term.split():
            number = as_bigint(term)
            if number is None:
                return queryset.none(), False
            where |= Q(user_id=number) | Q(chat_id=number)
        return (queryset.filter(where) if where else queryset), False

    @admin.display(description="action")
    def what(self, obj: DialogTimer) -> str:
        action: dict[str, Any] = obj.action if isinstance(obj.action, dict) else {}
        return " ".join(str(v) for v in (action.get("action"), action.get("state")) if v)

    @admin.display(description="action")
    def action_json(self, obj: DialogTimer) -> str:
        return pretty_json(obj.action)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "Cancel" stops a pending timer and keeps the record

    @admin.action(description="Cancel the selected pending timers", permissions=["change"])
    def cancel_timers(self, request: HttpRequest, queryset: QuerySet[DialogTimer]) -> None:
        from botdialogs import timers

        ids = list(queryset.filter(status=DialogTimer.Status.PENDING).values_list("id", flat=True))
        for timer_id in ids:
            timers.cancel(timer_id)
        self.message_user(request, f"{len(ids)} timer(s) cancelled", messages.SUCCESS)

    @admin.action(description="Fire the selected pending timers now", permissions=["change"])
    def fire_now(self, request: HttpRequest, queryset: QuerySet[DialogTimer]) -> None:
        from botdialogs import timers

        ids = list(queryset.filter(status=DialogTimer.Status.PENDING).values_list("id", flat=True))
        due = sum(timers.fire_now(timer_id) for timer_id in ids)
        self.message_user(
            request, f"{due} timer(s) due now: the next tick fires them", messages.SUCCESS
        )
