"""The admin page of plain aiogram FSM records (state and data outside aiogram_dialog)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from botdialogs.admin.big_tables import BotListFilter, JSONObjectField, StateListFilter
from botdialogs.admin.people import person_html, with_people
from botdialogs.admin.storage import StorageAdmin, without_single_bot
from botdialogs.models import FsmRecord
from botdialogs.storage.rows import KEY_FIELDS


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
