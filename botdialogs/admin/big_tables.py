"""Admin list machinery for big tables: capped counts, filters without DISTINCT, id and
username search, and JSON display and editing."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from importlib import import_module
from typing import Any, cast

from aiogram.fsm.state import StatesGroup
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest
from django.utils.html import format_html

from botdialogs.conf import get_settings
from botdialogs.engine.bots import bot_id

COUNT_LIMIT = 10_000
#: A username search looks at most this many chats.
USERNAME_MATCHES = 100
_BIGINT = 2**63


# -- list pieces -----------------------------------------------------------------------------
class CappedCountPaginator(Paginator):
    """Counts at most COUNT_LIMIT rows; pages past that are reached by searching or filtering."""

    @cached_property
    def count(self) -> int:
        # The admin pages a QuerySet (the stubs allow any sliceable sequence).
        return cast(QuerySet[Any], self.object_list)[:COUNT_LIMIT].count()

    @property
    def capped(self) -> bool:
        """True when the list has at least COUNT_LIMIT rows (the count is a lower bound)."""
        return self.count >= COUNT_LIMIT


def has_nul(request: HttpRequest) -> bool:
    """Whether any query parameter (name or value) holds a NUL character."""
    return any(
        "\x00" in name or any("\x00" in value for value in values)
        for name, values in request.GET.lists()
    )


class NulSafeChangeList(ChangeList):
    """A changelist that lists no rows, instead of failing, when its query holds a NUL.

    PostgreSQL refuses NUL in any text parameter ("cannot contain NUL (0x00) bytes"), so a
    ``?state=%00`` would reach the database as an error page. No stored value can hold a
    NUL on PostgreSQL, so "no results" is the true answer on every database.
    """

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.none() if has_nul(request) else queryset


class NulSafeAdminMixin:
    """Use :class:`NulSafeChangeList` for the admin's list page and say why it is empty."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        if has_nul(request):
            messages.warning(request, "The query holds a NUL character: no row can match it.")
        return NulSafeChangeList


class ReadOnlyPageMixin:
    """A row's page is for reading (no Save button); list actions still need "change"."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None:
            return False
        return super().has_change_permission(request)  # type: ignore[misc]


class BotListFilter(admin.SimpleListFilter):
    """The bots of ``BOTDIALOGS['BOTS']`` (no query over the table)."""

    title = "bot"
    parameter_name = "bot"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(bot_id(name)), name) for name in get_settings().bots]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = as_bigint(self.value() or "")
        if self.value() and value is None:
            return queryset.none()
        return queryset.filter(bot_id=value) if value is not None else queryset


class BlockedListFilter(admin.SimpleListFilter):
    """Chats that blocked the bot, or not; any other value is ignored.

    Django's own boolean filter sends an unknown value to its "database installation"
    error page; a list filter should just not apply.
    """

    title = "blocked the bot"
    parameter_name = "blocked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        choice = {"yes": True, "no": False}.get(self.value() or "")
        return queryset if choice is None else queryset.filter(is_blocked=choice)


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
        value = self.value()
        if value and value not in states:
            states.append(value)
        return [(state, state) for state in states]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(state=self.value()) if self.value() else queryset


def as_bigint(term: str) -> int | None:
    try:
        value = int(term)
    except ValueError:
        return None
    return value if -_BIGINT <= value < _BIGINT else None


def matching_usernames(term: str) -> set[str]:
    name = term.removeprefix("@")
    return {name, name.lower()}


def pretty_json(value: Any) -> str:
    """JSON indented in a <pre>, for read-only displays."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', text)


def json_display(field: str, description: str | None = None) -> Callable[[Any, Any], str]:
    """A read-only admin column (a method) that shows ``obj.<field>`` as :func:`pretty_json`.

    Assign it to ``<field>_json`` and name that in ``readonly_fields``; the column's title is
    ``description``, else the field's name in words ("start_data" reads "start data").
    """

    def show(model_admin: Any, obj: Any) -> str:
        return pretty_json(getattr(obj, field))

    show.__name__ = show.__qualname__ = f"{field}_json"
    return admin.display(description=description or field.replace("_", " "))(show)


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
