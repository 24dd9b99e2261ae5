"""Admin pages of aiogram_dialog's state: dialog stacks (with their contexts) and contexts.

A stack's page is for reading and its repairs are list actions ("Close the top dialog",
"Reset dialogs"); on a context's page only ``dialog_data`` can be edited, as a JSON object.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from botdialogs.admin.big_tables import (
    BotListFilter,
    JSONObjectField,
    ReadOnlyPageMixin,
    StateListFilter,
    json_display,
)
from botdialogs.admin.confirmation import PlannedChange, confirm_then_run
from botdialogs.admin.people import person_html, short_name, with_people
from botdialogs.admin.repair import (
    RESET_NOTICE,
    close_top_for_support,
    dialog_name,
    plural,
    reset_for_support,
    states_below,
)
from botdialogs.admin.storage import (
    LAST_SEEN,
    RESET_PAGE,
    StorageAdmin,
    last_seen_of,
    without_single_bot,
)
from botdialogs.models import DialogContext, DialogStack
from botdialogs.storage.rows import KEY_FIELDS


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

    start_data_json = json_display("start_data")
    dialog_data_json = json_display("dialog_data")
    widget_data_json = json_display("widget_data")


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

    intents_json = json_display("intents", "intents (bottom to top)")
    extra_json = json_display("extra")

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

    start_data_json = json_display("start_data")
    widget_data_json = json_display("widget_data")
    access_settings_json = json_display("access_settings")
    extra_json = json_display("extra")
