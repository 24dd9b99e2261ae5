"""HTTP views of local Telegram: thin wrappers over :mod:`.botapi`, :mod:`.chats` and
:mod:`.faults`."""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError

from botdialogs.engine.local_api import remember_request_address
from botdialogs.exceptions import UnknownBot
from botdialogs.localtg import botapi, chats, faults, payments
from botdialogs.localtg.errors import BotApiError


def _remember(request: HttpRequest) -> None:
    scope = getattr(request, "scope", None)
    if scope is not None:
        remember_request_address(scope)


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@csrf_exempt
async def bot_api(request: HttpRequest, token: str, method: str) -> HttpResponse:
    """``/localtg/bot<token>/<method>``: one Bot API call (form, multipart or JSON)."""
    _remember(request)
    if request.content_type == "application/json":
        params = _json_body(request)
        if params is None:
            return JsonResponse(BotApiError(400, "Bad Request: invalid JSON").as_json(), status=400)
        files: dict[str, Any] = {}
    else:
        if not request.META.get("CONTENT_LENGTH"):
            # aiohttp streams uploads chunked, and Django's multipart parser reads nothing
            # without a length: give it the length of the body the server already received.
            request.META["CONTENT_LENGTH"] = str(len(request.body))
        params = {key: request.POST.get(key) for key in request.POST}
        params.update({key: request.GET.get(key) for key in request.GET if key not in params})
        files = {key: request.FILES[key] for key in request.FILES}
    fault = await sync_to_async(faults.take)(token, method)
    if fault is not None:
        error = await faults.answer(fault)
        return JsonResponse(error.as_json(), status=error.code)
    answer = await sync_to_async(botapi.call)(token, method, params, files)
    return JsonResponse(answer, status=200 if answer["ok"] else answer["error_code"])


def _user_action(handler: Any) -> Any:
    """Wrap a user-API view: POST with a JSON object; unknown bots and bad input answer 4xx."""

    @csrf_exempt
    async def view(request: HttpRequest, name: str, chat_id: int) -> HttpResponse:
        _remember(request)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        body = _json_body(request)
        if body is None:
            return JsonResponse({"ok": False, "description": "Send a JSON object"}, status=400)
        try:
            result = await handler(name, chat_id, body)
        except UnknownBot as error:
            return JsonResponse({"ok": False, "description": str(error)}, status=404)
        except (chats.ChatError, KeyError, TypeError, ValueError) as error:
            return JsonResponse({"ok": False, "description": str(error)}, status=400)
        return JsonResponse({"ok": True, "result": result})

    view.__doc__ = handler.__doc__
    return view


async def _send(name: str, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Send ``{"text": ..., "first_name"?: ..., "username"?: ...}`` as the user."""
    profile = {key: str(body[key]) for key in chats.PROFILE_FIELDS if key in body}
    done = await chats.send_message(name, chat_id, str(body["text"]), profile or None)
    return {
        "message_id": done.message_id,
        "update_id": done.update["update_id"],
        "webhook_status": done.status,
    }


async def _press(name: str, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Press ``{"text": label}`` or ``{"data": callback_data}``, optionally on ``message_id``."""
    done = await chats.press_button(
        name,
        chat_id,
        text=body.get("text"),
        data=body.get("data"),
        message_id=body.get("message_id"),
    )
    return {
        "message_id": done.message_id,
        "update_id": done.update["update_id"],
        "webhook_status": done.status,
    }


async def _block(name: str, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """``{"blocked": true|false}``: the user blocks or unblocks the bot (``my_chat_member``
    goes to the bot's webhook, as Telegram sends it)."""
    blocked = bool(body.get("blocked", True))
    status = await chats.block(name, chat_id, blocked)
    return {"blocked": blocked, "webhook_status": status}


async def _pay(name: str, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Press Pay on the invoice in ``{"message_id": n}`` (default: the newest unpaid one)."""
    message_id = body.get("message_id")
    outcome = await payments.pay_invoice(
        name, chat_id, int(message_id) if message_id is not None else None
    )
    return {
        "paid": outcome.paid,
        "charge_id": outcome.charge_id,
        "error_message": outcome.error_message,
    }


send_message = _user_action(_send)
pay_invoice = _user_action(_pay)
press_button = _user_action(_press)
block = _user_action(_block)


@csrf_exempt
async def messages(request: HttpRequest, name: str, chat_id: int) -> HttpResponse:
    """``GET .../messages/?since=<revision>``: the chat's changes after that revision."""
    if request.method == "POST":
        return await send_message(request, name=name, chat_id=chat_id)
    try:
        since = int(request.GET.get("since", "0"))
        result = await sync_to_async(chats.read_chat)(name, chat_id, since)
    except ValueError:
        return JsonResponse({"ok": False, "description": "since must be an integer"}, status=400)
    except UnknownBot as error:
        return JsonResponse({"ok": False, "description": str(error)}, status=404)
    return JsonResponse({"ok": True, "result": result})


@csrf_exempt
async def rate_limits(request: HttpRequest, name: str) -> HttpResponse:
    """``POST {"enabled": bool}``: switch 429 flood limits for a local bot."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = _json_body(request) or {}
    try:
        await sync_to_async(chats.set_rate_limited)(name, bool(body.get("enabled", True)))
    except UnknownBot as error:
        return JsonResponse({"ok": False, "description": str(error)}, status=404)
    return JsonResponse({"ok": True, "result": {"enabled": bool(body.get("enabled", True))}})


@csrf_exempt
async def fault(request: HttpRequest, name: str) -> HttpResponse:
    """``GET``: the bot's injected fault; ``POST`` a :class:`~.faults.FaultSpec` to set one
    (``{"kind": null}`` clears it)."""
    _remember(request)
    try:
        if request.method == "GET":
            return JsonResponse(
                {"ok": True, "result": await sync_to_async(faults.read_fault)(name)}
            )
        if request.method != "POST":
            return HttpResponseNotAllowed(["GET", "POST"])
        body = _json_body(request)
        if body is None:
            return JsonResponse({"ok": False, "description": "Send a JSON object"}, status=400)
        spec = faults.FaultSpec.model_validate(body)
        result = await sync_to_async(faults.set_fault)(name, spec)
    except UnknownBot as error:
        return JsonResponse({"ok": False, "description": str(error)}, status=404)
    except ValidationError as error:
        errors = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()
        )
        return JsonResponse({"ok": False, "description": errors}, status=400)
    return JsonResponse({"ok": True, "result": result})
