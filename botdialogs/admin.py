"""Admin for inspecting and repairing what the bots store: chats, dialog stacks, FSM records.

Built for big tables: lists order by an indexed column, count at most ``COUNT_LIMIT`` rows,
filter by bot and state without DISTINCT queries, and search by exact id or username only
(no ``LIKE`` over a million rows). Writes never interleave with an update of the same chat:
each runs in a transaction that first takes the chat lock the bot takes
(:mod:`botdialogs.isolation`; on PostgreSQL, as a transaction-level advisory lock). Fields
whose edit would corrupt a stack (intents, ids, keys, states of contexts) are read-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from importlib import import_module
from typing import Any

from aiogram.fsm.state import StatesGroup
from aiogram.fsm.storage.base import StorageKey
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections, router, transaction
from django.db.models import Model, Q, QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from botdialogs.bots import bot_id, bot_name_for_id, get_storage
from botdialogs.conf import get_settings
from botdialogs.isolation import advisory_key, chat_lock_name
from botdialogs.models import DialogContext, DialogStack, FsmRecord, TelegramChat

#: Lists count at most this many rows: ``COUNT(*)`` over a million rows is the slow part.
COUNT_LIMIT = 10_000
#: A username search looks at most this many chats.
USERNAME_MATCHES = 100
_BIGINT = 2**63
KEY_FIELDS = ("bot_id", "chat_id", "user_id", "thread_id", "business_connection_id")

ChatScope = tuple[int, int, int, str]


# -- chat locks ------------------------------------------------------------------------------
def _scope(row: Any) -> ChatScope:
    """The chat a row belongs to (TelegramChat rows have no topic: the chat's main lock)."""
    thread = getattr(row, "thread_id", 0)
    return (row.bot_id, row.chat_id, thread, getattr(row, "business_connection_id", ""))


def _scopes(queryset: QuerySet) -> set[ChatScope]:
    names = {field.name for field in queryset.model._meta.concrete_fields}
    fields = [name for name in KEY_FIELDS if name in names]
    return {_scope(row) for row in queryset.select_related(None).only(*fields)}


@contextmanager
def chat_write(model: type[Model], scopes: Iterable[ChatScope]) -> Iterator[None]:
    """A transaction holding the bot's chat lock of every scope (on PostgreSQL).

    The bot holds the same lock for a whole update (load, handle, write), so an admin write
    waits for a running update and the next update sees the admin's change. Locks are taken
    in one order, so two admin writes over the same chats cannot deadlock. On other
    databases the transaction alone serialises writes (SQLite allows one writer).
    """
    using = router.db_for_write(model)
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            keys = sorted({advisory_key(chat_lock_name(_storage_key(s))) for s in scopes})
            with connection.cursor() as cursor:
                for key in keys:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        yield


def _storage_key(scope: ChatScope) -> StorageKey:
    bot, chat, thread, business_connection = scope
    return StorageKey(
        bot_id=bot,
        chat_id=chat,
        user_id=chat,
        thread_id=thread or None,
        business_connection_id=business_connection or None,
    )


# -- repairs ---------------------------------------------------------------------------------
def reset_stacks(stacks: QuerySet[DialogStack], chunk: int = 500) -> tuple[int, int]:
    """Delete stacks and their contexts, chunk by chunk; returns (stacks, contexts) deleted."""
    pks = list(stacks.order_by().values_list("pk", flat=True))
    deleted_stacks = deleted_contexts = 0
    for start in range(0, len(pks), chunk):
        batch = DialogStack.objects.filter(pk__in=pks[start : start + chunk])
        with chat_write(DialogStack, _scopes(batch)):
            _, by_model = batch.delete()
        deleted_stacks += by_model.get(DialogStack._meta.label, 0)
        deleted_contexts += by_model.get(DialogContext._meta.label, 0)
    return deleted_stacks, deleted_contexts


def reset_chat(chat: TelegramChat) -> tuple[int, int]:
    """Delete every stack and context the chat's bot has for the chat (every user, topic)."""
    where = Q(bot_id=chat.bot_id, chat_id=chat.chat_id)
    scopes = {
        (chat.bot_id, chat.chat_id, thread, business_connection)
        for model in (DialogStack, DialogContext)
        for thread, business_connection in model.objects.filter(where)
        .values_list("thread_id", "business_connection_id")
        .distinct()
    }
    with chat_write(DialogStack, scopes):
        contexts = DialogContext.objects.filter(where).delete()[0]
        stacks = DialogStack.objects.filter(where).delete()[0]
    return stacks, contexts


def close_top_dialog(stack_pk: int) -> bool:
    """Pop the top intent of a stack, delete its context, and show the new top's state.

    Returns False when the stack is gone or empty. Like ``DialogManager.done()`` without
    the message: the user's next update goes to the dialog below.
    """
    stack = DialogStack.objects.filter(pk=stack_pk).only(*KEY_FIELDS).first()
    if stack is None:
        return False
    with chat_write(DialogStack, [_scope(stack)]):
        stack = DialogStack.objects.select_for_update().filter(pk=stack_pk).first()
        if stack is None or not stack.intents:
            return False
        intents = list(stack.intents)
        top = intents.pop()
        key = {name: getattr(stack, name) for name in KEY_FIELDS}
        DialogContext.objects.filter(**key, intent_id=top).delete()
        below = DialogContext.objects.filter(**key, intent_id=intents[-1]) if intents else None
        stack.intents = intents
        stack.depth = len(intents)
        stack.state = (below.values_list("state", flat=True).first() or "") if below else ""
        stack.save(update_fields=["intents", "depth", "state", "updated_at"])
    return True


# -- list pieces -----------------------------------------------------------------------------
class CappedCountPaginator(Paginator):
    """Counts at most COUNT_LIMIT rows; pages past that are reached by searching or filtering."""

    @cached_property
    def count(self) -> int:
        return self.object_list[:COUNT_LIMIT].count()

    @property
    def capped(self) -> bool:
        """True when the list has at least COUNT_LIMIT rows (the count is a lower bound)."""
        return self.count >= COUNT_LIMIT


class BotListFilter(admin.SimpleListFilter):
    """The bots of ``BOTDIALOGS['BOTS']`` (no query over the table)."""

    title = "bot"
    parameter_name = "bot"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(bot_id(name)), name) for name in get_settings().bots]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = _as_bigint(self.value() or "")
        if self.value() and value is None:
            return queryset.none()
        return queryset.filter(bot_id=value) if value is not None else queryset


def known_states() -> list[str]:
    """States of every StatesGroup the bots' code defines (importing their routers' modules)."""
    for bot in get_settings().bots.values():
        import_module(bot.router.rpartition(".")[0])
    names: set[str] = set()
    groups: list[type[StatesGroup]] = [StatesGroup]
    while groups:
        group = groups.pop()
        groups.extend(group.__subclasses__())
        if group is not StatesGroup:
            names.update(group.__all_states_names__)
    return sorted(names)


class StateListFilter(admin.SimpleListFilter):
    """The states the bots' code defines, plus the one asked for (no DISTINCT query)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        states = known_states()
        if self.value() and self.value() not in states:
            states.append(self.value())
        return [(state, state) for state in states]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(state=self.value()) if self.value() else queryset


def _as_bigint(term: str) -> int | None:
    try:
        value = int(term)
    except ValueError:
        return None
    return value if -_BIGINT <= value < _BIGINT else None


def _usernames(term: str) -> set[str]:
    name = term.removeprefix("@")
    return {name, name.lower()}


def pretty_json(value: Any) -> str:
    """JSON indented in a <pre>, for read-only displays."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', text)


class JSONObjectField(forms.JSONField):
    """A JSON object (``{...}``) in an indented textarea; anything else is a clear error."""

    widget = forms.Textarea(attrs={"rows": 16, "cols": 80, "style": "font-family:monospace"})

    def to_python(self, value: Any) -> Any:
        if self.disabled or isinstance(value, dict):
            return value
        if value in self.empty_values:
            return {}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValidationError(
                "Not valid JSON: %(error)s. Write an object such as "
                '{"cart": {"pizza": 1}}, with double quotes around keys and strings.',
                code="invalid",
                params={"error": str(error)},
            ) from error
        if not isinstance(parsed, dict):
            raise ValidationError(
                "Enter a JSON object ({...}), not %(kind)s: the bot expects a dict here.",
                code="not_object",
                params={"kind": type(parsed).__name__ if parsed is not None else "null"},
            )
        return parsed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2)


# -- admins ----------------------------------------------------------------------------------
class StorageAdmin(admin.ModelAdmin):
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
            number = _as_bigint(term)
            if number is not None:
                where |= Q(user_id=number) | Q(chat_id=number)
            else:
                names |= _usernames(term)
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
            request, {**(extra_context or {}), "count_limit": COUNT_LIMIT}
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
        with chat_write(type(obj), [_scope(obj)]):
            obj.save(update_fields=fields)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with chat_write(type(obj), [_scope(obj)]):
            obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with chat_write(queryset.model, _scopes(queryset)):
            queryset.delete()


@admin.register(TelegramChat)
class TelegramChatAdmin(StorageAdmin):
    """Who the bots talk to; "Reset dialogs" gives a chat a fresh start."""

    list_display = (
        "__str__",
        "user_id",
        "chat_id",
        "chat_type",
        "bot",
        "site_user",
        "is_blocked",
        "last_seen",
        "dialogs",
    )
    list_select_related = ("site_user",)
    list_filter = (BotListFilter, "is_blocked")
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
        "first_seen",
        "last_seen",
        "dialogs",
    )
    fields = (*readonly_fields, "site_user", "is_blocked")
    actions = ("reset_dialogs",)

    def username_q(self, names: set[str]) -> Q:
        return Q(username__in=names)

    @admin.display(description="dialogs")
    def dialogs(self, obj: TelegramChat) -> str:
        url = reverse("admin:botdialogs_dialogstack_changelist")
        return format_html('<a href="{}?q={}&amp;bot={}">stacks</a>', url, obj.chat_id, obj.bot_id)

    @admin.action(
        description="Reset dialogs (delete the chat's stacks and contexts)", permissions=["delete"]
    )
    def reset_dialogs(self, request: HttpRequest, queryset: QuerySet[TelegramChat]) -> None:
        stacks = contexts = 0
        for chat in queryset.select_related(None).only("bot_id", "chat_id"):
            deleted = reset_chat(chat)
            stacks, contexts = stacks + deleted[0], contexts + deleted[1]
        self.message_user(request, f"Deleted {stacks} dialog stacks and {contexts} contexts.")


class DialogContextInline(admin.TabularInline):
    """The stack's open dialogs, read-only; edit dialog data on a context's own page."""

    model = DialogContext
    fk_name = "stack"
    fields = (
        "intent_id",
        "state",
        "start_data_json",
        "dialog_data_json",
        "widget_data_json",
        "updated_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("pk",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="start data")
    def start_data_json(self, obj: DialogContext) -> str:
        return pretty_json(obj.start_data)

    @admin.display(description="dialog data")
    def dialog_data_json(self, obj: DialogContext) -> str:
        return pretty_json(obj.dialog_data)

    @admin.display(description="widget data")
    def widget_data_json(self, obj: DialogContext) -> str:
        return pretty_json(obj.widget_data)


@admin.register(DialogStack)
class DialogStackAdmin(StorageAdmin):
    """aiogram_dialog stacks: the top state at a glance, contexts inline, reset and close."""

    list_display = (
        "chat_id",
        "user_id",
        "stack_name",
        "state",
        "depth",
        "bot",
        "updated_at",
        "expires_at",
    )
    list_filter = (BotListFilter, StateListFilter)
    ordering = ("-updated_at",)
    inlines = (DialogContextInline,)
    fieldsets = (
        ("Key", {"fields": ("bot", *KEY_FIELDS, "stack_id")}),
        ("Dialogs", {"fields": ("state", "depth", "intents_json")}),
        (
            "Last message",
            {
                "fields": (
                    "last_message_id",
                    "last_reply_keyboard",
                    "last_media_id",
                    "last_media_unique_id",
                    "last_income_media_group_id",
                )
            },
        ),
        ("Other", {"fields": ("extra_json", "updated_at", "expires_at")}),
    )
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])
    actions = ("reset_dialogs", "close_top")

    @admin.display(description="stack", ordering="stack_id")
    def stack_name(self, obj: DialogStack) -> str:
        return obj.stack_id or "default"

    @admin.display(description="intents (bottom to top)")
    def intents_json(self, obj: DialogStack) -> str:
        return pretty_json(obj.intents)

    @admin.display(description="extra")
    def extra_json(self, obj: DialogStack) -> str:
        return pretty_json(obj.extra)

    @admin.action(
        description="Reset dialogs (delete stacks and their contexts)", permissions=["delete"]
    )
    def reset_dialogs(self, request: HttpRequest, queryset: QuerySet[DialogStack]) -> None:
        stacks, contexts = reset_stacks(queryset)
        self.message_user(request, f"Deleted {stacks} dialog stacks and {contexts} contexts.")

    @admin.action(description="Close the top dialog", permissions=["change"])
    def close_top(self, request: HttpRequest, queryset: QuerySet[DialogStack]) -> None:
        closed = sum(
            close_top_dialog(pk) for pk in queryset.order_by().values_list("pk", flat=True)
        )
        self.message_user(request, f"Closed the top dialog of {closed} stacks.")


class DialogContextForm(forms.ModelForm):
    """Only dialog_data is editable, and only as a JSON object."""

    dialog_data = JSONObjectField(label="dialog data", required=False)

    class Meta:
        model = DialogContext
        fields = ("dialog_data",)


@admin.register(DialogContext)
class DialogContextAdmin(StorageAdmin):
    """Open dialogs; dialog_data can be repaired, the rest would corrupt the stack."""

    form = DialogContextForm
    list_display = ("intent_id", "state", "chat_id", "user_id", "stack_link", "bot", "updated_at")
    list_filter = (BotListFilter, StateListFilter)
    ordering = ("-updated_at",)
    readonly_fields = (
        "bot",
        *KEY_FIELDS,
        "intent_id",
        "stack_link",
        "stack_key",
        "state",
        "start_data_json",
        "widget_data_json",
        "access_settings_json",
        "extra_json",
        "updated_at",
    )
    fields = (*readonly_fields[:-5], "dialog_data", *readonly_fields[-5:])

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a stack would still name it: close the top dialog on the stack instead

    @admin.display(description="stack")
    def stack_link(self, obj: DialogContext) -> str:
        if obj.stack_id is None:
            return "(none)"
        url = reverse("admin:botdialogs_dialogstack_change", args=[obj.stack_id])
        return format_html('<a href="{}">{}</a>', url, obj.stack_key or "default")

    @admin.display(description="start data")
    def start_data_json(self, obj: DialogContext) -> str:
        return pretty_json(obj.start_data)

    @admin.display(description="widget data")
    def widget_data_json(self, obj: DialogContext) -> str:
        return pretty_json(obj.widget_data)

    @admin.display(description="access settings")
    def access_settings_json(self, obj: DialogContext) -> str:
        return pretty_json(obj.access_settings)

    @admin.display(description="extra")
    def extra_json(self, obj: DialogContext) -> str:
        return pretty_json(obj.extra)


class FsmRecordForm(forms.ModelForm):
    """Plain aiogram FSM state and data; data must be a JSON object."""

    data = JSONObjectField(required=False)

    class Meta:
        model = FsmRecord
        fields = ("state", "data")


@admin.register(FsmRecord)
class FsmRecordAdmin(StorageAdmin):
    """aiogram FSM state and data outside aiogram_dialog."""

    form = FsmRecordForm
    list_display = (
        "destiny",
        "state",
        "chat_id",
        "user_id",
        "bot",
        "updated_at",
        "state_expires_at",
    )
    list_filter = (BotListFilter, StateListFilter)
    ordering = ("-updated_at",)
    readonly_fields = (
        "bot",
        *KEY_FIELDS,
        "destiny",
        "state_expires_at",
        "data_expires_at",
        "updated_at",
    )
    fields = (*readonly_fields[:-3], "state", "data", *readonly_fields[-3:])


# -- Background actions and broadcasts (botdialogs.background, botdialogs.broadcast) ---------

from botdialogs.models import BackgroundAction, Broadcast  # noqa: E402


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
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

    @admin.action(description="Run again (resume)")
    def run_again(self, request: HttpRequest, queryset: QuerySet[Broadcast]) -> None:
        from botdialogs import broadcast

        for job in queryset:
            Broadcast.objects.filter(pk=job.pk).update(status=Broadcast.Status.PENDING)
            broadcast.send(job)
        self.message_user(request, f"{queryset.count()} broadcast(s) queued", messages.SUCCESS)


@admin.register(BackgroundAction)
class BackgroundActionAdmin(admin.ModelAdmin):
    """Actions workers received: what ran, what was rejected and why."""

    list_display = (
        "action_id",
        "action",
        "bot_name",
        "chat_id",
        "status",
        "attempts",
        "started_at",
    )
    list_filter = ("status", "action", "bot_name")
    search_fields = ("=action_id", "=chat_id", "=user_id")
    readonly_fields = [f.name for f in BackgroundAction._meta.fields]
    list_select_related = ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
