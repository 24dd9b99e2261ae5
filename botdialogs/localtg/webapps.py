"""Mini Apps in local Telegram: the ``initData`` a simulated user's client hands the page.

A ``web_app`` button in the chat playground opens its page in a panel (``webapp_panel.js``)
with ``initData`` signed by the local bot's token, as Telegram signs it with a real bot's,
and the ``Telegram.WebApp`` shim (``telegram-web-app.js``) in the page reads it. A local
bot's token is public, so its Mini App data is trusted only while DEBUG is on
(:func:`botdialogs.webapp.verify.token_for`); this endpoint refuses to sign otherwise.
"""

from __future__ import annotations

import secrets
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from botdialogs.exceptions import UnknownBot
from botdialogs.localtg import chats
from botdialogs.webapp import sign_init_data


def init_data_for(bot_name: str, chat_id: int) -> str:
    """``initData`` for the simulated user of ``chat_id`` opening a Mini App of ``bot_name``."""
    from botdialogs.engine.bots import bot_token

    chat = chats.find_chat(bot_name, chat_id)
    user: dict[str, Any] = {"id": chat.chat_id, "first_name": chat.first_name}
    for key in ("last_name", "username", "language_code"):
        if getattr(chat, key):
            user[key] = getattr(chat, key)
    user["allows_write_to_pm"] = True
    fields = {
        "user": user,
        # Telegram's per-chat opaque id: stable for one chat, meaningless elsewhere.
        "chat_instance": str(chat.chat_id * 7919 % 10**18),
        "chat_type": "private",
        # For answerWebAppQuery; local Telegram's names the chat it answers into (botapi).
        "query_id": f"LT{chat.chat_id}-{secrets.token_hex(8)}",
    }
    return sign_init_data(fields, bot_token(bot_name))


@csrf_exempt
async def open_web_app(request: HttpRequest, name: str, chat_id: int) -> HttpResponse:
    """``POST .../webapp/``: ``{"init_data": ...}`` for the chat's user (DEBUG only)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not settings.DEBUG:
        return JsonResponse(
            {"ok": False, "description": "Local Mini Apps only run while DEBUG is on"},
            status=403,
        )
    try:
        init_data = await sync_to_async(init_data_for)(name, chat_id)
    except (UnknownBot, chats.ChatError) as error:
        return JsonResponse({"ok": False, "description": str(error)}, status=404)
    return JsonResponse({"ok": True, "result": {"init_data": init_data}})
