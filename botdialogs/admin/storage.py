"""Admin pages for what the bots store: chats, dialog stacks, contexts and FSM records.

Built for big tables: lists order by an indexed column, count at most ``COUNT_LIMIT`` rows,
filter by bot and state without DISTINCT queries, and search by exact id or username only
(no ``LIKE`` over a million rows). Writes go through :mod:`botdialogs.admin.repair`, under the
chat lock. Fields whose edit would corrupt a stack (intents, ids, keys, states of contexts)
are read-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from botdialogs.admin import big_tables
from botdialogs.admin.big_tables import (
    USERNAME_MATCHES,
    BlockedListFilter,
    BotListFilter,
    CappedCountPaginator,
    JSONObjectField,
    NulSafeAdminMixin,
    ReadOnlyPageMixin,
    StateListFilter,
    as_bigint,
    matching_usernames,
    pretty_json,
)
from botdialogs.admin.confirmation import PlannedChange, confirm_then_run
from botdialogs.admin.languages import ChatLanguageAdmin
from botdialogs.admin.people import person_html, playground_url, short_name, with_people
from botdialogs.admin.repair import (
    RESET_NOTICE,
    RepairOutcome,
    chat_scope_of,
    chat_scopes_of,
    chat_write,
    close_top_for_support,
    dialog_name,
    plural,
    reset_for_support,
    states_below,
)
from botdialogs.conf import get_settings
from botdialogs.engine.bots import bot_name_for_id, get_storage
from botdialogs.models import DialogContext, DialogStack, FsmRecord, TelegramChat
from botdialogs.storage.rows import KEY_FIELDS
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


# -- admins ----------------------------------------------------------------------------------
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
class DialogStackAdmin(ReadOnlyPageMixin, StorageAdmin):
    """aiogram_dialog stacks: whose, the top state at a glance, contexts inline, repairs."""

    change_form_template = "botdialogs/admin/dialogstack_change_form.html"
    list_display = ("who", "chat_id", "dialog", "depth", "bot", "updated_at", "expires_at")
    list_display_links = ("dialog",)
    list_filter = (BotListFilter, StateListFilter)
    ordering = ("-updated_at",)
    inlines = (DialogContextInline,)
    fieldsets = (
        ("Who", {"fields": ("who", "seen")}),
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
    readonly_fields = tuple(flatten_fieldsets(fieldsets))
    actions = ("close_top", "reset_dialogs")

    def get_queryset(self, request: HttpRequest) -> QuerySet[DialogStack]:
        return with_people(super().get_queryset(request))

    def get_list_display(self, request: HttpRequest) -> Any:
        return without_single_bot(super().get_list_display(request))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "Reset dialogs" deletes and tells the user; a bare delete would not

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The page's heading says whose stack it is and what they see."""
        stack = self.get_object(request, object_id)
        if stack is not None:
            subtitle = f"{short_name(stack)}: {self.dialog(stack)}"
            extra_context = {"subtitle": subtitle, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="user")
    def who(self, obj: DialogStack) -> str:
        return person_html(obj)

    @admin.display(description=LAST_SEEN)
    def seen(self, obj: DialogStack) -> str:
        return last_seen_of(obj)

    @admin.display(description="top dialog", ordering="state")
    def dialog(self, obj: DialogStack) -> str:
        state = obj.state or "(none open)"
        return f"{state} (stack {obj.stack_id})" if obj.stack_id else state

    @admin.display(description="intents (bottom to top)")
    def intents_json(self, obj: DialogStack) -> str:
        return pretty_json(obj.intents)

    @admin.display(description="extra")
    def extra_json(self, obj: DialogStack) -> str:
        return pretty_json(obj.extra)

    @admin.action(
        description="Close the top dialog… (asks first; shows the one below)",
        permissions=["change"],
    )
    def close_top(
        self, request: HttpRequest, queryset: QuerySet[DialogStack]
    ) -> TemplateResponse | None:
        def plan(stack: DialogStack) -> PlannedChange:
            if not stack.intents:
                return PlannedChange(
                    stack.pk, short_name(stack), "nothing to close: no dialog is open", True
                )
            states = states_below(stack)
            shown = f"{states[-2]} is shown again" if len(states) > 1 else "no dialog is left"
            return PlannedChange(
                stack.pk,
                short_name(stack),
                f"closes dialog {dialog_name(states[-1] or stack.state)} "
                f"({states[-1] or stack.state}); {shown}",
                expect=stack.intents[-1],
            )

        return confirm_then_run(
            self,
            request,
            queryset,
            action="close_top",
            title="Close the top dialog?",
            button="Yes, close it",
            plan=plan,
            run=lambda stack, top: close_top_for_support(stack.pk, short_name(stack), top),
        )

    @admin.action(description="Reset dialogs… (asks first; tells the user)", permissions=["change"])
    def reset_dialogs(
        self, request: HttpRequest, queryset: QuerySet[DialogStack]
    ) -> TemplateResponse | None:
        def plan(stack: DialogStack) -> PlannedChange:
            return PlannedChange(
                stack.pk,
                short_name(stack),
                f"deletes the stack with {plural(stack.depth, 'open dialog')}"
                f"{' (' + stack.state + ' on top)' if stack.state else ''}; their last "
                f'buttons are removed and they read "{RESET_NOTICE}"',
            )

        return confirm_then_run(
            self,
            request,
            queryset,
            **RESET_PAGE,
            plan=plan,
            run=lambda stack, _seen: reset_for_support([stack], short_name(stack)),
        )


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
    list_display = ("state", "who", "chat_id", "stack_link", "bot", "updated_at")
    list_filter = (BotListFilter, StateListFilter)
    ordering = ("-updated_at",)
    readonly_fields = (
        "who",
        "seen",
        "bot",
        *KEY_FIELDS,
        "intent_id",
        "stack_link",
        "aiogd_stack_id",
        "state",
        "start_data_json",
        "widget_data_json",
        "access_settings_json",
        "extra_json",
        "updated_at",
    )
    fields = (*readonly_fields[:-5], "dialog_data", *readonly_fields[-5:])

    def get_queryset(self, request: HttpRequest) -> QuerySet[DialogContext]:
        return with_people(super().get_queryset(request))

    def get_list_display(self, request: HttpRequest) -> Any:
        return without_single_bot(super().get_list_display(request))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a stack would still name it: close the top dialog on the stack instead

    @admin.display(description="user")
    def who(self, obj: DialogContext) -> str:
        return person_html(obj)

    @admin.display(description=LAST_SEEN)
    def seen(self, obj: DialogContext) -> str:
        return last_seen_of(obj)

    @admin.display(description="stack")
    def stack_link(self, obj: DialogContext) -> str:
        if obj.stack_id is None:
            return "(none)"
        url = reverse("admin:botdialogs_dialogstack_change", args=[obj.stack_id])
        name = f"stack {obj.aiogd_stack_id}" if obj.aiogd_stack_id else "stack"
        return format_html('<a href="{}">{}</a>', url, name)

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

    # The form's metaclass moves declared fields to base_fields: no clash with BaseForm.data.
    data = JSONObjectField(required=False)  # type: ignore[assignment]

    class Meta:
        model = FsmRecord
        fields = ("state", "data")


@admin.register(FsmRecord)
class FsmRecordAdmin(StorageAdmin):
    """aiogram FSM state and data outside aiogram_dialog."""

    form = FsmRecordForm
    list_display = (
        "who",
        "destiny",
        "state",
        "chat_id",
        "user_id",
        "bot",
        "updated_at",
        "state_expires_at",
    )
    list_display_links = ("destiny",)
    list_filter = (BotListFilter, StateListFilter)
    ordering = ("-updated_at",)
    readonly_fields = (
        "who",
        "bot",
        *KEY_FIELDS,
        "destiny",
        "state_expires_at",
        "data_expires_at",
        "updated_at",
    )
    fields = (*readonly_fields[:-3], "state", "data", *readonly_fields[-3:])

    def get_queryset(self, request: HttpRequest) -> QuerySet[FsmRecord]:
        return with_people(super().get_queryset(request))

    def get_list_display(self, request: HttpRequest) -> Any:
        return without_single_bot(super().get_list_display(request))

    @admin.display(description="user")
    def who(self, obj: FsmRecord) -> str:
        return person_html(obj)


# -- Background actions and broadcasts (botdialogs.background, botdialogs.broadcast) ---------
