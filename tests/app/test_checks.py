"""Misconfiguration of BOTDIALOGS is reported by `manage.py check` with an id and the key."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from botdialogs import conf
from botdialogs.checks import check_importable, check_settings
from botdialogs.engine import bots

GOOD_BOT = {"ROUTER": "botdialogs.testing.bots.counter_router"}


@pytest.mark.parametrize(
    ("raw", "check_id", "key"),
    [
        ([], "botdialogs.E001", "BOTDIALOGS"),
        ({"BOTS": {"default": GOOD_BOT}, "STORAGES": {}}, "botdialogs.E002", "['STORAGES']"),
        ({}, "botdialogs.E003", "['BOTS']"),
        ({"BOTS": {"default": "x"}}, "botdialogs.E004", "['default']"),
        ({"BOTS": {"default": {}}}, "botdialogs.E005", "['ROUTER']"),
        ({"BOTS": {"default": {**GOOD_BOT, "MODE": "fast"}}}, "botdialogs.E006", "['MODE']"),
        ({"BOTS": {"default": {**GOOD_BOT, "TOKEN": "nope"}}}, "botdialogs.E007", "['TOKEN']"),
        (
            {"BOTS": {"default": {**GOOD_BOT, "WEBHOOK_SECRET": 5}}},
            "botdialogs.E008",
            "['WEBHOOK_SECRET']",
        ),
        (
            {"BOTS": {"default": {**GOOD_BOT, "ALLOWED_UPDATES": "message"}}},
            "botdialogs.E009",
            "['ALLOWED_UPDATES']",
        ),
        ({"BOTS": {"default": GOOD_BOT}, "STORAGE": "redis"}, "botdialogs.E010", "['STORAGE']"),
        ({"BOTS": {"default": GOOD_BOT}, "BACKGROUND": "cron"}, "botdialogs.E011", "BACKGROUND"),
        (
            {"BOTS": {"default": GOOD_BOT}, "WEBHOOK_MAX_BODY_BYTES": -1},
            "botdialogs.E012",
            "WEBHOOK_MAX_BODY_BYTES",
        ),
        (
            {"BOTS": {"default": GOOD_BOT}, "LINK_TOKEN_MAX_AGE": "1d"},
            "botdialogs.E012",
            "LINK_TOKEN_MAX_AGE",
        ),
    ],
)
def test_bad_configuration_fails_the_check_naming_the_key(
    settings: Any, raw: Any, check_id: str, key: str
) -> None:
    settings.BOTDIALOGS = raw
    errors = check_settings()
    assert any(e.id == check_id and key in e.msg for e in errors), errors
    with pytest.raises(SystemCheckError, match=check_id):
        call_command("check")
    with pytest.raises(ImproperlyConfigured, match=check_id):
        conf.get_settings()


def test_router_that_does_not_import_is_an_error(settings: Any) -> None:
    settings.BOTDIALOGS = {"BOTS": {"default": {"ROUTER": "botdialogs.testing.bots.nothing_here"}}}
    assert [m for m in check_settings() if m.is_serious()] == []
    [error] = check_importable()
    assert error.id == "botdialogs.E013"
    assert "botdialogs.testing.bots.nothing_here" in error.msg


def test_missing_webhook_secret_of_a_local_bot_warns_only_when_debug_is_off(
    settings: Any,
) -> None:
    settings.BOTDIALOGS = {"BOTS": {"default": GOOD_BOT}}
    settings.DEBUG = True
    assert check_settings() == []
    settings.DEBUG = False
    [warning] = check_settings()
    assert warning.id == "botdialogs.W001"
    settings.BOTDIALOGS = {"BOTS": {"default": {**GOOD_BOT, "WEBHOOK_SECRET": "s"}}}
    assert check_settings() == []


def test_a_bot_with_a_token_and_no_secret_fails_the_check_when_debug_is_off(
    settings: Any,
) -> None:
    settings.BOTDIALOGS = {"BOTS": {"live": {**GOOD_BOT, "TOKEN": "123456:real"}}}
    settings.DEBUG = True
    assert check_settings() == []
    settings.DEBUG = False
    [error] = check_settings()
    assert error.id == "botdialogs.E014" and error.is_serious()
    assert "['live']['WEBHOOK_SECRET']" in error.msg
    with pytest.raises(SystemCheckError, match=r"botdialogs\.E014"):
        call_command("check")
    settings.BOTDIALOGS = {
        "BOTS": {"live": {**GOOD_BOT, "TOKEN": "123456:real", "WEBHOOK_SECRET": "s"}}
    }
    assert check_settings() == []


def test_two_bots_with_one_bot_id_fail_the_check(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = True  # secrets are another check's business
    settings.BOTDIALOGS = {
        "BOTS": {
            "shop": {**GOOD_BOT, "TOKEN": "123456:first"},
            "copy": {**GOOD_BOT, "TOKEN": "123456:second"},
            "local": GOOD_BOT,
        }
    }
    [error] = check_settings()
    assert error.id == "botdialogs.E015"
    assert "['shop', 'copy']" in error.msg and "123456" in error.msg
    # Local bots: ids derive from names; were two to meet, the check names them.
    settings.BOTDIALOGS = {"BOTS": {"plumless": GOOD_BOT, "buckeroo": GOOD_BOT}}
    assert check_settings() == []
    monkeypatch.setattr(bots, "local_bot_id", lambda name: 2**52)
    [error] = check_settings()
    assert error.id == "botdialogs.E015" and "['plumless', 'buckeroo']" in error.msg


def test_a_local_bot_needs_local_telegram_installed(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.apps import apps

    settings.DEBUG = True
    settings.BOTDIALOGS = {"BOTS": {"local": GOOD_BOT, "real": {**GOOD_BOT, "TOKEN": "1:x"}}}
    assert check_settings() == []
    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "botdialogs.localtg" and installed(name)
    )
    [error] = check_settings()
    assert error.id == "botdialogs.E016" and "'local'" in error.msg


def test_defaults_are_applied(settings: Any) -> None:
    settings.BOTDIALOGS = {"BOTS": {"shop": GOOD_BOT}}
    values = conf.get_settings()
    bot = values.bot("shop")
    assert (bot.token, bot.webhook_secret, bot.mode, bot.is_local) == ("", "", "inline", True)
    assert values.storage.backend == "botdialogs.storage.DjangoStorage"
    assert values.background == "inline"
    assert values.webhook_max_body_bytes == conf.DEFAULTS["WEBHOOK_MAX_BODY_BYTES"]
    assert values.link_token_max_age == 86400
