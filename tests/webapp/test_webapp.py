"""Mini App initData and the Login Widget: checks, the view decorator, accounts, bad input.

In-process, with a bot that has a (made-up) real token: nothing here reaches Telegram. The
demo flow against a real server is in tests/webapp/test_webapp_demo.py, in Chromium in
tests/browser/test_webapp.py.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from botdialogs import webapp
from botdialogs.engine.bots import bot_id
from botdialogs.models import BackgroundAction, TelegramChat
from botdialogs.webapp.init_data import data_check_string, parse_fields
from project.shop.models import Order

TOKEN = "123456:TEST-token-of-the-shop-bot"
OTHER_TOKEN = "654321:TEST-token-of-another-bot"
BOTS = {
    "shop": {"TOKEN": TOKEN, "ROUTER": "tests.counter_bot.build_router", "WEBHOOK_SECRET": "s"},
    "other": {
        "TOKEN": OTHER_TOKEN,
        "ROUTER": "tests.counter_bot.build_router",
        "WEBHOOK_SECRET": "s",
    },
    "local": {"ROUTER": "tests.counter_bot.build_router", "WEBHOOK_SECRET": "s"},
}
BOTDIALOGS = {"BOTS": BOTS}
USER = {
    "id": 4242,
    "first_name": "Ann",
    "last_name": "Lee",
    "username": "ann",
    "language_code": "en",
}

# Telegram's own examples. HMAC: the sample initData of the Mini Apps docs (bot token and
# data as published there); Ed25519: initData signed by Telegram's test environment for bot
# 2201403107, checked with Telegram's published test key.
DOCS_TOKEN = "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
DOCS_INIT_DATA = (
    "query_id=AAHdF6IQAAAAAN0XohDhrOrc"
    "&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22"
    "%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22"
    "%2C%22is_premium%22%3Atrue%7D"
    "&auth_date=1662771648"
    "&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"
)
TEST_ENV_BOT_ID = 2201403107
TEST_ENV_INIT_DATA = (
    "user=%7B%22id%22%3A5001146408%2C%22first_name%22%3A%22H%22%2C%22last_name%22%3A%22Test"
    "%22%2C%22language_code%22%3A%22en%22%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url"
    "%22%3A%22https%3A%5C%2F%5C%2Fa-ttgme.stel.com%5C%2Fi%5C%2Fuserpic%5C%2F320%5C%2FOhOF3_f4"
    "QY8PWlRZI2aG2sy66VMZw_ys9efvhvle_eCWj2zP8Vbb6pLs5d1Lij1w.svg%22%7D"
    "&chat_instance=3909909964740758046&chat_type=sender&auth_date=1759930604"
    "&signature=i8jsEp2yuO2tlldICxBscMG3xX-zUPznGZVsDNy0tz9GRVx9vxBWjTEt4BSMSa42TaOO0r2yGWBN0a1"
    "v9bVRAg&hash=1582635705fd71ffb8bee16062f38965550b5d9a4f85f387b2ea72067c57d45a"
)


@webapp.telegram_web_app(bot="shop")
def whoami(request: HttpRequest) -> JsonResponse:
    who = request.telegram_user  # type: ignore[attr-defined]
    return JsonResponse({"id": who.id, "chat_id": who.chat_id, "start_param": who.start_param})


@webapp.telegram_web_app(bot="shop", login_user=True)
def sign_in(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"user": request.user.get_username() if request.user.is_authenticated else ""}
    )


urlpatterns = [
    path("whoami/", whoami),
    path("sign-in/", sign_in),
    path("login-widget/<str:bot_name>/", webapp.login_widget),
    path("shop/", __import__("django.urls").urls.include("project.shop.urls")),
]

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("webapp_settings"),
]


@pytest.fixture
def webapp_settings() -> Any:
    backends = [
        "django.contrib.auth.backends.ModelBackend",
        "botdialogs.webapp.backends.TelegramBackend",
    ]
    with override_settings(
        BOTDIALOGS=BOTDIALOGS,
        ROOT_URLCONF="tests.webapp.test_webapp",
        AUTHENTICATION_BACKENDS=backends,
    ):
        yield


def signed(token: str = TOKEN, **fields: Any) -> str:
    return webapp.sign_init_data({"user": USER, "chat_type": "private", **fields}, token)


def tma(init_data: str | bytes) -> dict[str, Any]:
    value = init_data.decode("latin-1") if isinstance(init_data, bytes) else init_data
    return {"HTTP_AUTHORIZATION": f"tma {value}"}


# -- the checks themselves -------------------------------------------------------------------
def test_telegrams_sample_init_data_passes_the_hmac_check() -> None:
    fields = parse_fields(DOCS_INIT_DATA, max_bytes=4096)
    webapp.init_data.check_hash(fields, DOCS_TOKEN)
    data = webapp.init_data.init_data_from(fields)
    assert data.user is not None and (data.user.id, data.user.username) == (279058397, "vdkfrost")
    assert data.user.is_premium and data.query_id == "AAHdF6IQAAAAAN0XohDhrOrc"
    with pytest.raises(webapp.BadHash):
        webapp.init_data.check_hash(fields, OTHER_TOKEN)


def test_telegrams_ed25519_signature_passes_the_third_party_check() -> None:
    data = webapp.verify_third_party(
        TEST_ENV_INIT_DATA,
        TEST_ENV_BOT_ID,
        public_key=webapp.TELEGRAM_TEST_PUBLIC_KEY,
        now=1759930604 + 10,
    )
    assert data.user is not None and data.user.id == 5001146408 and data.chat_type == "sender"
    with pytest.raises(webapp.BadHash, match="not Telegram's for bot"):
        webapp.verify_third_party(
            TEST_ENV_INIT_DATA,
            TEST_ENV_BOT_ID + 1,
            public_key=webapp.TELEGRAM_TEST_PUBLIC_KEY,
            now=1759930604 + 10,
        )
    with pytest.raises(webapp.BadHash):  # the production key did not sign test data
        webapp.verify_third_party(TEST_ENV_INIT_DATA, TEST_ENV_BOT_ID, now=1759930604 + 10)
    with pytest.raises(webapp.InitDataExpired):
        webapp.verify_third_party(
            TEST_ENV_INIT_DATA, TEST_ENV_BOT_ID, public_key=webapp.TELEGRAM_TEST_PUBLIC_KEY
        )


def test_ed25519_signature_of_our_own_key_and_a_changed_field() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw().hex()
    fields = {"auth_date": str(int(time.time())), "user": json.dumps(USER), "hash": "0" * 64}
    message = f"{bot_id('shop')}:WebAppData\n" + data_check_string(
        fields, exclude=("hash", "signature")
    )
    fields["signature"] = base64.urlsafe_b64encode(key.sign(message.encode())).decode().rstrip("=")
    raw = "&".join(f"{k}={v}" for k, v in fields.items())
    assert webapp.verify_third_party(raw, bot_id("shop"), public_key=public).user == (
        webapp.TelegramUser(**USER)
    )
    forged = raw.replace("Ann", "Bob")
    with pytest.raises(webapp.BadHash):
        webapp.verify_third_party(forged, bot_id("shop"), public_key=public)


def test_valid_init_data_for_the_bot() -> None:
    data = webapp.verify_init_data(signed(start_param="table7"), "shop")
    assert data.user == webapp.TelegramUser(**USER)
    assert data.start_param == "table7" and data.chat_type == "private"


def test_forged_init_data_is_refused() -> None:
    raw = signed().replace("Ann", "Eve")
    with pytest.raises(webapp.BadHash):
        webapp.verify_init_data(raw, "shop")
    with pytest.raises(webapp.BadHash):  # signed with a token nobody here has
        webapp.verify_init_data(signed("999:not-ours"), "shop")


def test_expired_init_data_is_refused() -> None:
    old = webapp.sign_init_data({"user": USER}, TOKEN, auth_date=int(time.time()) - 3601)
    with pytest.raises(webapp.InitDataExpired, match="reopen the app"):
        webapp.verify_init_data(old, "shop")
    ahead = webapp.sign_init_data({"user": USER}, TOKEN, auth_date=int(time.time()) + 600)
    with pytest.raises(webapp.InitDataExpired, match="future"):
        webapp.verify_init_data(ahead, "shop")
    with override_settings(BOTDIALOGS={**BOTDIALOGS, "WEBAPP_INIT_DATA_MAX_AGE": 7200}):
        assert webapp.verify_init_data(old, "shop").user is not None


def test_init_data_of_another_bot_is_refused_as_wrong_bot() -> None:
    with pytest.raises(webapp.WrongBot, match="'other'"):
        webapp.verify_init_data(signed(OTHER_TOKEN), "shop")


def test_local_bot_init_data_is_refused_outside_debug() -> None:
    from botdialogs.engine.bots import bot_token

    raw = signed(bot_token("local"))
    with pytest.raises(webapp.LocalBotRefused):
        webapp.verify_init_data(raw, "local")
    with override_settings(DEBUG=True):
        assert webapp.verify_init_data(raw, "local").user is not None


# -- the decorated view ----------------------------------------------------------------------
def test_view_sees_the_telegram_user_from_either_header(client: Client) -> None:
    raw = signed(start_param="promo")
    answer = client.get("/whoami/", **tma(raw))
    assert answer.status_code == 200
    assert answer.json() == {"id": 4242, "chat_id": 4242, "start_param": "promo"}
    answer = client.post("/whoami/", HTTP_X_TELEGRAM_INIT_DATA=raw)
    assert answer.status_code == 200 and answer.json()["id"] == 4242


def test_a_header_post_is_csrf_exempt_but_a_body_post_is_not() -> None:
    strict = Client(enforce_csrf_checks=True)
    raw = signed()
    assert strict.post("/whoami/", **tma(raw)).status_code == 200
    refused = strict.post("/whoami/", {"init_data": raw})
    assert refused.status_code == 403 and b"CSRF" in refused.content
    strict.get("/whoami/", **tma(raw))  # no CSRF cookie from here: send one as a page would
    strict.cookies["csrftoken"] = "a" * 32
    accepted = strict.post("/whoami/", {"init_data": raw}, HTTP_X_CSRFTOKEN="a" * 32)
    assert accepted.status_code == 200 and accepted.json()["id"] == 4242


def test_replayed_init_data_is_refused_once_expired(client: Client) -> None:
    raw = webapp.sign_init_data({"user": USER}, TOKEN, auth_date=int(time.time()) - 50)
    assert client.get("/whoami/", **tma(raw)).status_code == 200
    assert client.get("/whoami/", **tma(raw)).status_code == 200  # the same app session
    with override_settings(BOTDIALOGS={**BOTDIALOGS, "WEBAPP_INIT_DATA_MAX_AGE": 30}):
        replayed = client.get("/whoami/", **tma(raw))
    assert replayed.status_code == 403 and "old" in replayed.json()["error"]


def _nothing_stored(client: Client) -> None:
    assert Order.objects.count() == 0
    assert BackgroundAction.objects.count() == 0
    assert TelegramChat.objects.count() == 0
    assert get_user_model().objects.count() == 0
    assert not auth.get_user(client).is_authenticated


def _bad_inputs() -> dict[str, tuple[dict[str, Any], int]]:
    raw = signed()
    return {
        "missing": ({}, 400),
        "empty": (tma(""), 400),
        "truncated": (tma(raw[: len(raw) // 2]), 400),
        "truncated hash": (tma(raw[:-10]), 400),
        "oversized": (tma(signed(start_param="x" * 5000)), 400),
        "non-UTF-8 raw": (tma(b"user=\xff\xfe&auth_date=1&hash=" + b"0" * 64), 400),
        "non-UTF-8 escaped": (tma("user=%FF%FE&auth_date=1&hash=" + "0" * 64), 400),
        "duplicate key": (tma(raw + "&user=%7B%22id%22%3A1%7D"), 400),
        "user not an object": (tma(webapp.sign_init_data({"user": "[4242]"}, TOKEN)), 400),
        "user id not an int": (tma(signed(user={"id": "4242", "first_name": "A"})), 400),
        "no user": (tma(webapp.sign_init_data({"chat_type": "private"}, TOKEN)), 400),
        "forged": (tma(raw.replace("Ann", "Eve")), 403),
        "other bot": (tma(signed(OTHER_TOKEN)), 403),
        "expired": (tma(webapp.sign_init_data({"user": USER}, TOKEN, auth_date=1)), 403),
    }


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_bad_init_data_gets_a_clear_error_and_changes_nothing(client: Client, case: str) -> None:
    headers, status = _bad_inputs()[case]
    for url in ("/sign-in/", "/shop/shop/order/"):
        answer = client.post(
            url,
            json.dumps({"items": {"tea": 1}}),
            "application/json",
            HTTP_IDEMPOTENCY_KEY="k" * 16,
            **headers,
        )
        assert answer.status_code == status, (url, answer.content)
        assert answer.json()["ok"] is False and answer.json()["error"]
    _nothing_stored(client)


def test_bad_order_bodies_are_refused_and_store_nothing(client: Client) -> None:
    raw = signed()
    for body, key in (
        ({"items": {"tea": 1}}, None),  # no Idempotency-Key
        ({"items": {"tea": 1}}, "short"),
        ({"items": {"caviar": 1}}, "k" * 16),
        ({"items": {"tea": 0}}, "k" * 16),
        ({"items": {"tea": True}}, "k" * 16),
        ({"items": []}, "k" * 16),
    ):
        extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        answer = client.post(
            "/shop/shop/order/", json.dumps(body), "application/json", **extra, **tma(raw)
        )
        assert answer.status_code == 400, (body, key)
        assert answer.json()["error"]
    answer = client.post("/shop/shop/order/", b"\xff", "application/json", **tma(raw))
    assert answer.status_code == 400
    _nothing_stored(client)


# -- accounts --------------------------------------------------------------------------------
def test_sign_in_logs_in_the_linked_user_only(client: Client) -> None:
    raw = signed()
    assert client.post("/sign-in/", **tma(raw)).json() == {"user": ""}  # nobody linked
    assert get_user_model().objects.count() == 0
    user = get_user_model().objects.create_user("ann")
    TelegramChat.objects.create(bot_id=bot_id("shop"), chat_id=4242, user_id=4242, site_user=user)
    assert client.post("/sign-in/", **tma(raw)).json() == {"user": "ann"}
    assert auth.get_user(client) == user
    other = Client()  # the same Telegram user's link does not cross to another bot
    assert other.post("/sign-in/", **tma(signed(OTHER_TOKEN))).status_code == 403


def test_sign_in_creates_and_links_a_user_when_allowed(client: Client) -> None:
    with override_settings(BOTDIALOGS={**BOTDIALOGS, "WEBAPP_CREATE_USERS": True}):
        assert client.post("/sign-in/", **tma(signed())).json() == {"user": "telegram-4242"}
        assert client.post("/sign-in/", **tma(signed())).json() == {"user": "telegram-4242"}
    user = get_user_model().objects.get()
    assert (user.first_name, user.has_usable_password()) == ("Ann", False)
    chat = TelegramChat.objects.get()
    assert (chat.bot_id, chat.user_id, chat.site_user) == (bot_id("shop"), 4242, user)


def test_creating_never_takes_over_an_account_by_its_name(client: Client) -> None:
    victim = get_user_model().objects.create_user("telegram-4242")
    with override_settings(BOTDIALOGS={**BOTDIALOGS, "WEBAPP_CREATE_USERS": True}):
        assert client.post("/sign-in/", **tma(signed())).json() == {"user": ""}
    assert not auth.get_user(client).is_authenticated
    assert not TelegramChat.objects.filter(site_user=victim).exists()


# -- the Login Widget ------------------------------------------------------------------------
def widget(token: str = TOKEN, **changes: Any) -> dict[str, str]:
    fields = {
        "id": 4242,
        "first_name": "Ann",
        "username": "ann",
        "photo_url": "https://t.me/i/a.jpg",
    }
    return webapp.sign_login_widget({**fields, **changes}, token)


def test_login_widget_data_is_checked() -> None:
    assert webapp.verify_login_widget(widget(), "shop").username == "ann"
    with pytest.raises(webapp.BadHash):
        webapp.verify_login_widget({**widget(), "id": "1"}, "shop")
    with pytest.raises(webapp.BadHash):  # Mini App signing is not the widget's
        fields = {"id": "4242", "auth_date": str(int(time.time()))}
        fields["hash"] = webapp.init_data.hash_for(fields, TOKEN)
        webapp.verify_login_widget(fields, "shop")
    with pytest.raises(webapp.InitDataExpired):
        webapp.verify_login_widget(widget(auth_date=int(time.time()) - 86401), "shop")
    with pytest.raises(webapp.MalformedInitData):
        webapp.verify_login_widget({}, "shop")


def test_login_widget_links_the_signed_in_user_then_logs_them_in() -> None:
    user = get_user_model().objects.create_user("ann", password="pw")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/whoami/")  # any page; the CSRF cookie is set by the test below
    browser.cookies["csrftoken"] = "b" * 32
    headers = {"HTTP_X_CSRFTOKEN": "b" * 32}
    assert browser.post("/login-widget/shop/", widget()).status_code == 403  # CSRF
    assert browser.get("/login-widget/shop/", widget()).status_code == 400  # GET: never
    assert browser.post("/login-widget/shop/", widget(), **headers).json()["user"] == "ann"
    assert TelegramChat.objects.get(user_id=4242).site_user == user
    someone = get_user_model().objects.create_user("bob")
    thief = Client()
    thief.force_login(someone)
    assert thief.post("/login-widget/shop/", widget()).status_code == 409  # linked to Ann
    fresh = Client()
    assert fresh.post("/login-widget/shop/", {**widget(), "hash": "0" * 64}).status_code == 403
    assert not auth.get_user(fresh).is_authenticated
    assert fresh.post("/login-widget/shop/", widget()).json() == {"ok": True, "user": "ann"}
    assert auth.get_user(fresh) == user


def test_login_widget_refuses_duplicate_fields(client: Client) -> None:
    body = "&".join(f"{k}={v}" for k, v in widget().items()) + "&id=1"
    answer = client.post("/login-widget/shop/", body, "application/x-www-form-urlencoded")
    assert answer.status_code == 400 and "twice" in answer.json()["error"]
    _nothing_stored(client)


# -- settings and checks ---------------------------------------------------------------------
def test_webapp_settings_are_checked() -> None:
    from django.core import checks

    from botdialogs.checks import check_settings
    from botdialogs.conf import find_problems

    bad = {**BOTDIALOGS, "WEBAPP_INIT_DATA_MAX_AGE": 0, "TELEGRAM_PUBLIC_KEY": "xyz"}
    bad["WEBAPP_CREATE_USERS"] = "yes"
    keys = {problem.key for problem in find_problems(bad)}
    assert {
        "BOTDIALOGS['WEBAPP_INIT_DATA_MAX_AGE']",
        "BOTDIALOGS['TELEGRAM_PUBLIC_KEY']",
        "BOTDIALOGS['WEBAPP_CREATE_USERS']",
    } <= keys
    lax = {**BOTDIALOGS, "WEBAPP_INIT_DATA_MAX_AGE": 7 * 86400, "WEBAPP_CREATE_USERS": True}
    with override_settings(
        BOTDIALOGS=lax, AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]
    ):
        ids = {message.id for message in check_settings() if message.level == checks.WARNING}
    assert {"botdialogs.W021", "botdialogs.W022"} <= ids
    assert not {"botdialogs.W021", "botdialogs.W022"} & {m.id for m in check_settings()}
