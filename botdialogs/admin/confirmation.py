"""Repair actions that ask first: an intermediate page lists what will change, like Django's
delete confirmation, and only its POST (``post=yes``, with the CSRF token) changes anything.
Then each row's outcome is said in a message of its own and the list is shown again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from botdialogs.admin.repair import RepairOutcome

#: Rows one repair may touch: each is a Bot API call or a background action.
MAX_ROWS = 100


@dataclass
class PlannedChange:
    """One row on the confirmation page: whose it is and what the repair will do to it."""

    pk: Any
    who: str
    change: str
    refused: bool = False
    #: What the support person saw (posted back as ``expect-<pk>``): the repair checks that
    #: it still holds, so a double click or a stale page changes nothing twice.
    expect: str = ""


def confirm_then_run(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    button: str,
    plan: Callable[[Any], PlannedChange],
    run: Callable[[Any, str | None], RepairOutcome],
) -> TemplateResponse | None:
    """The confirmation page for ``action``; once confirmed, ``run`` each row and report.

    ``run`` gets the row and what its confirmation showed (``PlannedChange.expect``, or
    None when the POST did not carry it).
    """
    rows = list(queryset[: MAX_ROWS + 1])
    if len(rows) > MAX_ROWS:
        model_admin.message_user(
            request,
            f"Select at most {MAX_ROWS} rows for this repair (filter or search first). "
            "Nothing was changed.",
            messages.ERROR,
        )
        return None
    if request.POST.get("post") != "yes":
        opts = model_admin.model._meta
        planned = [plan(row) for row in rows]
        context = {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": opts,
            "app_label": opts.app_label,
            "planned": planned,
            "changing": sum(not p.refused for p in planned),
            "action": action,
            "button": button,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = model_admin.admin_site.name
        return TemplateResponse(request, "botdialogs/admin/repair_confirmation.html", context)
    for row in rows:
        outcome = run(row, request.POST.get(f"expect-{row.pk}"))
        model_admin.message_user(request, outcome.text, outcome.level)
    return None
