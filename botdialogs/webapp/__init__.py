"""Telegram Mini Apps and the Login Widget: pages of this site that know who the user is.

A view for a Mini App::

    from botdialogs import webapp

    @webapp.telegram_web_app(bot="default")
    def order(request):
        who = request.telegram_user            # TelegramWebAppUser: bot, id, chat_id, ...
        with transaction.atomic():
            ...                                # the view's own writes, keyed by the request
            webapp.start(request, FoodOrder.placed, data={"order_id": 7})
        return JsonResponse({"ok": True})

Owns: checking ``initData`` (:mod:`.init_data`, HMAC and Ed25519; :mod:`.verify`, the site's
bots and settings), the Login Widget (:mod:`.login_widget`), the view decorator and its
CSRF rule (:mod:`.requests`), site accounts (:mod:`.accounts`, :mod:`.backends`), dialog
actions once per request (:mod:`.dialogs`) and ``answerWebAppQuery`` (:mod:`.inline_answers`).
May import :mod:`botdialogs.background` and the layers below it; never ``http``, ``admin``
or the optional apps.
"""

from __future__ import annotations

from botdialogs.webapp.dialogs import done, request_key, start, switch_to, update
from botdialogs.webapp.exceptions import (
    BadHash,
    InitDataExpired,
    LinkConflict,
    LocalBotRefused,
    MalformedInitData,
    MissingIdempotencyKey,
    TelegramAuthError,
    WrongBot,
)
from botdialogs.webapp.init_data import (
    TELEGRAM_PUBLIC_KEY,
    TELEGRAM_TEST_PUBLIC_KEY,
    TelegramUser,
    WebAppChat,
    WebAppInitData,
    sign_init_data,
)
from botdialogs.webapp.inline_answers import aanswer_web_app_query, answer_web_app_query
from botdialogs.webapp.login_widget import sign_login_widget, verify_login_widget
from botdialogs.webapp.requests import (
    TelegramWebAppUser,
    log_in_with_login_widget,
    login_widget,
    mini_app_page,
    telegram_user_for,
    telegram_web_app,
)
from botdialogs.webapp.verify import verify_init_data, verify_third_party

__all__ = [
    "TELEGRAM_PUBLIC_KEY",
    "TELEGRAM_TEST_PUBLIC_KEY",
    "BadHash",
    "InitDataExpired",
    "LinkConflict",
    "LocalBotRefused",
    "MalformedInitData",
    "MissingIdempotencyKey",
    "TelegramAuthError",
    "TelegramUser",
    "TelegramWebAppUser",
    "WebAppChat",
    "WebAppInitData",
    "WrongBot",
    "aanswer_web_app_query",
    "answer_web_app_query",
    "done",
    "log_in_with_login_widget",
    "login_widget",
    "mini_app_page",
    "request_key",
    "sign_init_data",
    "sign_login_widget",
    "start",
    "switch_to",
    "telegram_user_for",
    "telegram_web_app",
    "update",
    "verify_init_data",
    "verify_login_widget",
    "verify_third_party",
]
