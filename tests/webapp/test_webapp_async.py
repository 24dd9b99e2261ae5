"""``telegram_web_app`` and ``mini_app_page`` on ``async def`` views, through Django's handlers.

The async view stays a coroutine function (Django runs it on the event loop, not in a thread);
the checks and the login run in a thread because they read the database.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path

from botdialogs import webapp
from botdialogs.engine.bots import bot_id
from botdialogs.models import TelegramChat
from tests.webapp.test_webapp import BOTDIALOGS, OTHER_TOKEN, signed, tma


def headers(init_data: str) -> dict[str, Any]:
    return {"headers": {"Authorization": f"tma {init_data}"}}


@webapp.mini_app_page
@webapp.telegram_web_app(bot="shop")
async def whoami(request: HttpRequest) -> JsonResponse:
    who = request.telegram_user  # type: ignore[attr-defined]
    return JsonResponse({"id": who.id, "start_param": who.start_param})


@webapp.telegram_web_app(bot="shop", login_user=True)
async def sign_in(request: HttpRequest) -> JsonResponse:
    user = await request.auser()
    return JsonResponse({"user": user.get_username() if user.is_authenticated else ""})


urlpatterns = [path("whoami/", whoami), path("sign-in/", sign_in)]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("async_views")]


@pytest.fixture
def async_views() -> Any:
    backends = [
        "django.contrib.auth.backends.ModelBackend",
        "botdialogs.webapp.backends.TelegramBackend",
    ]
    with override_settings(
        BOTDIALOGS=BOTDIALOGS,
        ROOT_URLCONF="tests.webapp.test_webapp_async",
        AUTHENTICATION_BACKENDS=backends,
    ):
        yield


def test_decorated_async_views_stay_coroutine_functions() -> None:
    assert iscoroutinefunction(whoami) and iscoroutinefunction(sign_in)


async def test_async_view_sees_the_telegram_user_and_may_be_framed() -> None:
    client = AsyncClient()
    answer = await client.get("/whoami/", **headers(signed(start_param="promo")))
    assert answer.status_code == 200
    assert answer.json() == {"id": 4242, "start_param": "promo"}
    assert answer.headers["Content-Security-Policy"].startswith("frame-ancestors 'self'")
    assert "X-Frame-Options" not in answer.headers


async def test_async_view_refuses_missing_and_forged_init_data() -> None:
    client = AsyncClient()
    missing = await client.get("/whoami/")
    assert missing.status_code == 400 and "initData is missing" in missing.json()["error"]
    forged = await client.get("/whoami/", **headers(signed(OTHER_TOKEN)))
    assert forged.status_code == 403 and "other" in forged.json()["error"]


async def test_async_view_body_post_keeps_the_csrf_check() -> None:
    strict = AsyncClient(enforce_csrf_checks=True)
    refused = await strict.post("/whoami/", {"init_data": signed()})
    assert refused.status_code == 403 and b"CSRF" in refused.content
    assert (await strict.post("/whoami/", **headers(signed()))).status_code == 200


async def test_async_view_logs_in_the_linked_user() -> None:
    client = AsyncClient()
    assert (await client.post("/sign-in/", **headers(signed()))).json() == {"user": ""}
    user = await get_user_model().objects.acreate(username="ann")
    await TelegramChat.objects.acreate(
        bot_id=bot_id("shop"), chat_id=4242, user_id=4242, site_user=user
    )
    assert (await client.post("/sign-in/", **headers(signed()))).json() == {"user": "ann"}
    assert (await client.post("/sign-in/")).status_code == 400  # the session is no pass


def test_async_view_through_the_sync_client_too() -> None:
    answer = Client().get("/whoami/", **tma(signed()))
    assert answer.status_code == 200 and answer.json()["id"] == 4242
