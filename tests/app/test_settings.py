"""Project settings come from the environment, with embedded defaults when nothing is set."""

from __future__ import annotations

import json
import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.processes  # each test reads the settings in a Python subprocess
VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "BOT_MODE",
    "BOTDIALOGS_BACKGROUND",
    "TEST_DB_SUFFIX",
    "PGBOUNCER",
    "CELERY_VISIBILITY_TIMEOUT",
)
PROBE = """
import json, django
from django.conf import settings
django.setup()
from botdialogs.conf import get_settings
bot = get_settings().bot("default")
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": str(settings.DATABASES["default"]["NAME"]),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "debug": settings.DEBUG,
    "hosts": settings.ALLOWED_HOSTS,
    "local": bot.is_local,
    "secret": bot.webhook_secret,
    "mode": bot.mode,
    "background": get_settings().background,
}))
"""


OPERATIONS_PROBE = """
import json, django
from django.conf import settings
django.setup()
from project.celery import app
database = settings.DATABASES["default"]
print(json.dumps({
    "options": database.get("OPTIONS", {}),
    "no_server_cursors": database.get("DISABLE_SERVER_SIDE_CURSORS", False),
    "transport": app.conf.broker_transport_options,
}))
"""


def settings_with(probe: str = PROBE, **env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    clean.update(env, DJANGO_SETTINGS_MODULE="project.settings")
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout)


def test_embedded_defaults_with_nothing_set() -> None:
    values = settings_with()
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(ROOT / "db.sqlite3")
    assert values["layer"] == "channels.layers.InMemoryChannelLayer"
    assert values["eager"] is True
    assert values["debug"] is True
    assert values["hosts"] == ["127.0.0.1", "localhost", "[::1]"]
    assert values["local"] is True  # no token: local Telegram
    assert values["secret"] == ""
    assert values["mode"] == "inline"
    assert values["background"] == "inline"


def test_services_from_the_environment() -> None:
    values = settings_with(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/shop",
        REDIS_URL="redis://127.0.0.1:6379/3",
        TELEGRAM_BOT_TOKEN="123456:ABCdef",
        TELEGRAM_WEBHOOK_SECRET="s3cret",
        BOT_MODE="queued",
    )
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["name"] == "shop"
    assert values["layer"] == "channels_redis.core.RedisChannelLayer"
    assert values["broker"] == "redis://127.0.0.1:6379/3"
    assert values["eager"] is False
    assert values["background"] == "celery"
    assert values["local"] is False
    assert (values["secret"], values["mode"]) == ("s3cret", "queued")


def test_celery_broker_url_overrides_the_broker() -> None:
    values = settings_with(
        REDIS_URL="redis://127.0.0.1:6379/3", CELERY_BROKER_URL="amqp://guest@127.0.0.1//"
    )
    assert values["broker"] == "amqp://guest@127.0.0.1//"
    assert values["eager"] is False


def test_debug_off_needs_a_secret_key() -> None:
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        settings_with(DEBUG="0")
    values = settings_with(DEBUG="0", SECRET_KEY="x" * 50, ALLOWED_HOSTS="bot.example.com")
    assert values["debug"] is False
    assert values["hosts"] == ["bot.example.com"]


def test_a_bad_boolean_is_named() -> None:
    with pytest.raises(RuntimeError, match="DEBUG='maybe' is not a boolean"):
        settings_with(DEBUG="maybe")


# -- logging and the production profile -----------------------------------------------------
PRODUCTION_VARIABLES = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "LOG_LEVEL",
)
FAILING_VIEW = """
import logging, sys, types, django
from django.urls import path
django.setup()
from django.test import Client, override_settings

def boom(request):
    raise RuntimeError("kaboom in a view")

urls = types.ModuleType("boom_urls")
urls.urlpatterns = [path("boom/", boom)]
sys.modules["boom_urls"] = urls
with override_settings(ROOT_URLCONF="boom_urls"):
    response = Client(raise_request_exception=False).get("/boom/")
try:
    raise ValueError("kaboom in a handler")
except ValueError:
    logging.getLogger("botdialogs.webhook").exception("Update 7 of bot 'default' failed")
print(response.status_code)
"""


def run_with(args: list[str], settings: str = "project.settings", **env: str) -> Any:
    """Run a Python command in a clean environment of the demo project's variables."""
    hidden = VARIABLES + PRODUCTION_VARIABLES
    clean = {k: v for k, v in os.environ.items() if k not in hidden}
    clean.update(env, DJANGO_SETTINGS_MODULE=settings)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_a_500_is_logged_with_its_traceback_when_debug_is_off() -> None:
    result = run_with(
        ["-c", FAILING_VIEW], DEBUG="0", SECRET_KEY="x" * 50, ALLOWED_HOSTS="testserver"
    )
    assert result.stdout.strip() == "500", result.stderr
    log = result.stderr
    assert "ERROR django.request: Internal Server Error: /boom/" in log
    assert "Traceback (most recent call last)" in log
    assert "RuntimeError: kaboom in a view" in log
    assert "ERROR botdialogs.webhook: Update 7 of bot 'default' failed" in log
    assert "ValueError: kaboom in a handler" in log
    assert log.count("Internal Server Error") == 1  # once, not again through "django"


def production_env() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "bot.example.com",
        "TELEGRAM_BOT_TOKEN": "123456:ABCdef",
        "TELEGRAM_WEBHOOK_SECRET": secrets.token_urlsafe(32),
    }


def check_deploy(settings: str, **env: str) -> Any:
    command = ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return run_with(command, settings=settings, **env)


def test_check_deploy_is_clean_for_the_production_profile() -> None:
    result = check_deploy("project.settings_production", **production_env())
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
    # The plain settings with DEBUG off are not a production profile: the same check fails.
    plain = check_deploy("project.settings", DEBUG="0", **production_env())
    assert plain.returncode != 0
    assert "security.W004" in plain.stderr  # no HSTS


def test_the_production_profile_refuses_what_is_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    no_secret = {**production_env(), "TELEGRAM_WEBHOOK_SECRET": ""}
    result = check_deploy("project.settings_production", **no_secret)
    assert result.returncode != 0 and "botdialogs.E014" in result.stderr
    for unsafe, message in [
        ({"DEBUG": "1"}, "runs with DEBUG off"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": " "}, "ALLOWED_HOSTS must be set"),
        ({"SECURE_HSTS_SECONDS": "a year"}, "is not an integer"),
    ]:
        with monkeypatch.context() as patch:
            for name, value in {**production_env(), **unsafe}.items():
                patch.setenv(name, value)
            with pytest.raises(ImproperlyConfigured, match=message):
                runpy.run_module("project.settings_production")  # its own checks, in-process


def test_pgbouncer_turns_off_prepared_statements_and_server_side_cursors() -> None:
    url = "postgres://postgres@127.0.0.1:6432/shop"
    plain = settings_with(OPERATIONS_PROBE, DATABASE_URL=url)
    assert "prepare_threshold" not in plain["options"]
    assert plain["no_server_cursors"] is False
    pooled = settings_with(OPERATIONS_PROBE, DATABASE_URL=url, PGBOUNCER="1")
    assert pooled["options"]["prepare_threshold"] is None
    assert pooled["no_server_cursors"] is True
    with pytest.raises(RuntimeError, match="PGBOUNCER=1 needs a PostgreSQL DATABASE_URL"):
        settings_with(OPERATIONS_PROBE, PGBOUNCER="1")


def test_celery_visibility_timeout_from_the_environment() -> None:
    transport = settings_with(OPERATIONS_PROBE)["transport"]
    assert transport["visibility_timeout"] == 3600
    transport = settings_with(OPERATIONS_PROBE, CELERY_VISIBILITY_TIMEOUT="6")["transport"]
    assert transport["visibility_timeout"] == 6
    # Abandoned tasks are looked for often enough to come back soon after the timeout.
    assert transport["unacked_restore_interval"] * transport["unacked_restore_throttle"] <= 6
    with pytest.raises(RuntimeError, match="CELERY_VISIBILITY_TIMEOUT must be a positive"):
        settings_with(OPERATIONS_PROBE, CELERY_VISIBILITY_TIMEOUT="0")
