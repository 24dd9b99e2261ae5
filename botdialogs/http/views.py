"""The webhook view: HTTP in, :mod:`botdialogs.http.webhook` does the work, HTTP out.

Statuses come from the table the lean ASGI route uses too
(:func:`~botdialogs.http.webhook.error_status`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from botdialogs.conf import get_settings
from botdialogs.engine.bots import get_bot
from botdialogs.engine.local_api import remember_request_address
from botdialogs.http.webhook import (
    SECRET_HEADER,
    check_headers,
    error_status,
    handle_delivery,
    parse_delivery,
)


def _error(status: int, description: str) -> JsonResponse:
    return JsonResponse({"ok": False, "description": description}, status=status)


def read_capped_body(request: HttpRequest, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the request body: enough to tell that it is too large.

    ``request.body`` would apply Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (a 400 from
    Django) instead of ``WEBHOOK_MAX_BODY_BYTES`` (our 413), and trusts Content-Length;
    reading the stream counts what really arrived, whatever either setting says.
    """
    return request.read(limit + 1)


@csrf_exempt
async def webhook(request: HttpRequest, name: str) -> HttpResponse:
    """``POST /bots/<name>/webhook/``: one update from Telegram (or local Telegram)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    scope = getattr(request, "scope", None)
    if scope is not None:
        remember_request_address(scope)
    try:
        # Headers first: an unknown bot or a wrong secret costs no read of the body.
        check_headers(
            name,
            request.headers.get(SECRET_HEADER),
            request.headers.get("Content-Length"),
        )
        body = read_capped_body(request, get_settings().webhook_max_body_bytes)
        delivery = parse_delivery(body, bot=get_bot(name))
        response = await handle_delivery(name, delivery)
    except Exception as error:
        answer = error_status(error)
        if answer is None:
            raise  # a bug of ours: Django logs it and answers 500; Telegram retries
        return _error(*answer)
    return JsonResponse(response)
