"""The webhook view: HTTP in, :mod:`botdialogs.webhook` does the work, HTTP out."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from botdialogs import webhook as webhooks
from botdialogs.exceptions import (
    BadUpdate,
    UnknownBot,
    UpdateTooLarge,
    WebhookForbidden,
    is_transient,
)
from botdialogs.localtg.address import remember_request_address


def _error(status: int, description: str) -> JsonResponse:
    return JsonResponse({"ok": False, "description": description}, status=status)


@csrf_exempt
async def webhook(request: HttpRequest, name: str) -> HttpResponse:
    """``POST /bots/<name>/webhook/``: one update from Telegram (or local Telegram)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    scope = getattr(request, "scope", None)
    if scope is not None:
        remember_request_address(scope)
    try:
        raw_update = webhooks.accept_update(
            name,
            request.headers.get(webhooks.SECRET_HEADER),
            request.headers.get("Content-Length"),
            request.body,
        )
    except UnknownBot:
        return _error(404, "Unknown bot")
    except WebhookForbidden:
        return _error(403, "Forbidden")
    except UpdateTooLarge:
        return _error(413, "Request body too large")
    except BadUpdate as error:
        return _error(400, str(error))
    try:
        body = await webhooks.handle_delivery(name, raw_update)
    except Exception as error:
        if not is_transient(error):
            raise  # a bug of ours: Django logs it and answers 500; Telegram retries
        # Nothing was committed or queued: Telegram delivers the update again.
        return _error(503, "Temporarily unable to process the update")
    return JsonResponse(body)
