"""Admin pages for background work: broadcasts with their progress, background actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from botdialogs.admin.big_tables import NulSafeAdminMixin, ReadOnlyPageMixin
from botdialogs.models import BackgroundAction, Broadcast


@admin.register(Broadcast)
class BroadcastAdmin(ReadOnlyPageMixin, NulSafeAdminMixin, admin.ModelAdmin):
    """Progress of broadcasts; "Run again" resumes one (chats already reached are skipped)."""

    list_display = ("id", "bot_name", "what", "status", "progress", "sent", "failed", "skipped")
    list_filter = ("status", "bot_name")
    readonly_fields = (
        "bot_name",
        "action",
        "status",
        "total",
        "sent",
        "failed",
        "skipped",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    )
    exclude = ("chat_pks",)
    actions = ("run_again",)

    @admin.display(description="action")
    def what(self, obj: Broadcast) -> str:
        action = obj.action or {}
        return " ".join(str(v) for v in (action.get("action"), action.get("state")) if v)

    @admin.display(description="progress")
    def progress(self, obj: Broadcast) -> str:
        percent = 100 * obj.processed // obj.total if obj.total else 100
        return format_html(
            '<progress value="{}" max="{}"></progress> {}/{} ({}%)',
            obj.processed,
            obj.total or 1,
            obj.processed,
            obj.total,
            percent,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of who was reached; resume with "Run again"

    @admin.action(description="Run again (resume)")
    def run_again(self, request: HttpRequest, queryset: QuerySet[Broadcast]) -> None:
        from botdialogs.background import broadcast

        for resumed in queryset:
            Broadcast.objects.filter(pk=resumed.pk).update(status=Broadcast.Status.PENDING)
            broadcast.send(resumed)
        self.message_user(request, f"{queryset.count()} broadcast(s) queued", messages.SUCCESS)


@admin.register(BackgroundAction)
class BackgroundActionAdmin(ReadOnlyPageMixin, NulSafeAdminMixin, admin.ModelAdmin):
    """Every action performed (inline, Celery or Channels): what ran, what was rejected, why.

    A performed action's row commits with the dialog state it changed (its claim), so the
    list shows exactly what took effect.
    """

    list_display = (
        "action_id",
        "what",
        "bot_name",
        "chat_id",
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "error_excerpt",
    )
    list_filter = ("status", "action", "bot_name")
    search_fields = ("=action_id", "=chat_id", "=user_id")
    readonly_fields = [f.name for f in BackgroundAction._meta.fields]
    list_select_related = ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a deleted "done" row would let a redelivered action run twice

    @admin.display(description="action", ordering="action")
    def what(self, obj: BackgroundAction) -> str:
        payload = obj.payload if isinstance(obj.payload, dict) else {}
        return " ".join(str(v) for v in (obj.action, payload.get("state")) if v)

    @admin.display(description="error")
    def error_excerpt(self, obj: BackgroundAction) -> str:
        return obj.error if len(obj.error) <= 80 else obj.error[:79] + "…"
