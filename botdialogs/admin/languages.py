"""The chat's language in the admin: shown with where it came from, and set by an admin.

An admin's choice is stored as the chat's own language (:mod:`botdialogs.i18n`), and the
chat's open dialog is updated from the background once the change commits, so the user sees
their current window redrawn in the new language. Empty means "automatic" again: the site
user's language, else Telegram's, else the site's default.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Field
from django.http import HttpRequest

from botdialogs.background import update
from botdialogs.engine.bots import bot_name_for_id
from botdialogs.i18n.languages import chat_language
from botdialogs.models import LanguageChosenBy, TelegramChat

AUTOMATIC = "automatic: the site user's, Telegram's or the site's default"


class ChatLanguageAdmin(admin.ModelAdmin):
    """TelegramChat's admin part for languages (mixed into its ModelAdmin)."""

    @admin.display(description="language")
    def language_shown(self, obj: TelegramChat) -> str:
        """``de (chosen in the bot)``: the language the bot speaks to them in, and why."""
        return str(chat_language(obj))

    def formfield_for_dbfield(
        self, db_field: Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if db_field.name == "language":
            return forms.ChoiceField(
                label="chosen language",
                choices=[("", AUTOMATIC), *settings.LANGUAGES],
                required=False,
                help_text="Saving redraws the chat's open dialog in this language.",
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(
        self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool
    ) -> None:
        """Store who chose the language with it; redraw the user's dialog after the commit."""
        if "language" not in form.changed_data:
            super().save_model(request, obj, form, change)
            return
        obj.language_source = LanguageChosenBy.ADMIN if obj.language else ""
        form.changed_data.append("language_source")  # written with the form's fields
        super().save_model(request, obj, form, change)
        name = bot_name_for_id(obj.bot_id)
        if name is not None:
            # From sync code background.update waits for this transaction's commit.
            transaction.on_commit(lambda: update(name, obj.user_id, obj.chat_id))
        messages.info(request, f"{obj} now speaks {chat_language(obj)}; their dialog is redrawn.")
