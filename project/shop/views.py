"""The demo's Mini App: "Open the menu" in the food order opens this page inside Telegram.

The page lists the dishes; ordering there places the same :class:`Order` as the bot's
Finish button and moves the user's dialog to "Order #N placed". The order and the dialog
action are keyed by the request's ``Idempotency-Key``: the page may post again (a lost
answer, a double tap) and still places one order and updates the chat once.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from botdialogs import timers, webapp
from botdialogs.conf import get_settings
from botdialogs.exceptions import UnknownBot
from project.bot.dialogs import CLOSE_KEY, MENU, REMIND_KEY
from project.bot.states import FoodOrder
from project.shop.models import Order

#: Telegram's own script; local bots get local Telegram's shim of it.
TELEGRAM_WEB_APP_JS = "https://telegram.org/js/telegram-web-app.js"
MAX_QUANTITY = 20


@require_GET
@webapp.mini_app_page
def menu(request: HttpRequest, bot_name: str) -> HttpResponse:
    """The page (public: it shows dishes; who orders is told by the signed initData)."""
    try:
        local = get_settings().bot(bot_name).is_local
    except UnknownBot:
        return HttpResponse("No such bot", status=404, content_type="text/plain")
    script = static("localtg/telegram-web-app.js") if local else TELEGRAM_WEB_APP_JS
    return render(
        request,
        "shop/menu.html",
        {"dishes": list(MENU.items()), "telegram_script": script, "bot_name": bot_name},
    )


def _items(body: Any) -> dict[str, int]:
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, dict) or not items:
        raise ValueError("items must be a non-empty object of dish -> quantity")
    for key, quantity in items.items():
        if key not in MENU:
            raise ValueError(f"{key!r} is not on the menu")
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise ValueError(f"the quantity of {key} must be a whole number")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValueError(f"the quantity of {key} must be 1 to {MAX_QUANTITY}")
    return {MENU[key]: quantity for key, quantity in items.items()}


@webapp.telegram_web_app
def place_order(request: HttpRequest, bot_name: str) -> HttpResponse:
    """``POST {"items": {"pizza": 2}}`` with initData and an Idempotency-Key: one order."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        items = _items(json.loads(request.body))
    except ValueError as error:
        return JsonResponse({"ok": False, "error": str(error)}, status=400)
    who = request.telegram_user  # type: ignore[attr-defined]
    key = webapp.request_key(request)
    with transaction.atomic():
        order, _ = Order.objects.get_or_create(
            bot_name=bot_name,
            callback_query_id=f"webapp-{key}",
            defaults={
                "telegram_user_id": who.id,
                "telegram_chat_id": who.chat_id,
                "items": items,
            },
        )
        # The cart in the chat is answered: its idle timers go, as after any answer there.
        for timer_key in (REMIND_KEY, CLOSE_KEY):
            timers.cancel(bot=bot_name, chat_id=who.chat_id, key=timer_key)
        webapp.start(request, FoodOrder.placed, data={"order_id": order.pk}, show_mode="send")
    return JsonResponse({"ok": True, "order": order.pk, "summary": order.summary()})
