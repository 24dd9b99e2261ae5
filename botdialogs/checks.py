"""Django system checks for botdialogs: misconfiguration is found at ``manage.py check``."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from django.conf import settings
from django.core import checks

from botdialogs import conf


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Errors for every malformed or unsafe ``BOTDIALOGS`` key; warnings for unsafe but valid.

    - E014: a bot with a real token and no webhook secret while DEBUG is off (its webhook
      refuses deliveries too, see :func:`botdialogs.conf.missing_required_secret`);
    - E015: two bots with one bot id (one token twice, or local names whose ids meet): they
      would share every chat's dialog state;
    - E016: a bot without a token (it talks to local Telegram) while the optional app
      ``botdialogs.localtg`` is not installed;
    - W001: a local bot (no token) without a webhook secret while DEBUG is off;
    - W021, W022: Mini App settings (:func:`_webapp_warnings`).
    """
    problems = conf.find_problems()
    messages: list[checks.CheckMessage] = [
        checks.Error(f"{p.key} {p.message}", hint=p.hint or None, id=p.id) for p in problems
    ]
    if problems:
        return messages
    for bot in conf.get_settings().bots.values():
        key = f"BOTDIALOGS['BOTS'][{bot.name!r}]['WEBHOOK_SECRET']"
        if conf.missing_required_secret(bot):
            messages.append(
                checks.Error(
                    f"{key} is empty while DEBUG is off and the bot has a token: anyone who "
                    "finds the webhook URL could post forged updates, so the webhook refuses "
                    "every delivery (403)",
                    hint="Set a secret (TELEGRAM_WEBHOOK_SECRET in the demo project) and run "
                    "setwebhook again.",
                    id="botdialogs.E014",
                )
            )
        elif not bot.webhook_secret and not settings.DEBUG:
            messages.append(
                checks.Warning(
                    f"{key} is empty while DEBUG is off: anyone who finds the webhook URL can "
                    "post updates to this local bot",
                    hint="Set a secret, or serve local Telegram only while DEBUG is on.",
                    id="botdialogs.W001",
                )
            )
    messages.extend(_shared_bot_ids())
    messages.extend(_local_bots_without_local_telegram())
    messages.extend(_webapp_warnings())
    return messages


def _webapp_warnings() -> list[checks.CheckMessage]:
    """W021: initData trusted for over a day; W022: WEBAPP_CREATE_USERS without the backend."""
    current = conf.get_settings()
    messages: list[checks.CheckMessage] = []
    if current.webapp_init_data_max_age > 24 * 60 * 60:
        messages.append(
            checks.Warning(
                "BOTDIALOGS['WEBAPP_INIT_DATA_MAX_AGE'] is over a day: a leaked Mini App "
                "initData would be trusted that long",
                hint="An hour (the default) covers a Mini App session.",
                id="botdialogs.W021",
            )
        )
    backend = "botdialogs.webapp.backends.TelegramBackend"
    if current.webapp_create_users and backend not in settings.AUTHENTICATION_BACKENDS:
        messages.append(
            checks.Warning(
                "BOTDIALOGS['WEBAPP_CREATE_USERS'] is on but no Telegram sign-in can happen: "
                f"{backend!r} is not in AUTHENTICATION_BACKENDS",
                hint=f"Add {backend!r} to AUTHENTICATION_BACKENDS.",
                id="botdialogs.W022",
            )
        )
    return messages


def _local_bots_without_local_telegram() -> list[checks.CheckMessage]:
    from django.apps import apps

    if apps.is_installed("botdialogs.localtg"):
        return []
    return [
        checks.Error(
            f"BOTDIALOGS['BOTS'][{bot.name!r}] has no TOKEN, so it would talk to local "
            "Telegram, and 'botdialogs.localtg' is not in INSTALLED_APPS",
            hint="Give the bot a TOKEN, or add 'botdialogs.localtg' to INSTALLED_APPS and "
            "path('localtg/', include('botdialogs.localtg.urls')) to urls.py.",
            id="botdialogs.E016",
        )
        for bot in conf.get_settings().bots.values()
        if bot.is_local
    ]


def _shared_bot_ids() -> list[checks.CheckMessage]:
    from botdialogs.engine.bots import bot_id

    names_by_id: dict[int, list[str]] = {}
    for name in conf.get_settings().bots:
        names_by_id.setdefault(bot_id(name), []).append(name)
    return [
        checks.Error(
            f"BOTDIALOGS['BOTS'] {names} all have bot id {shared}: they would share every "
            "chat's stored dialogs",
            hint="Give each bot its own token (or, for local bots, another name).",
            id="botdialogs.E015",
        )
        for shared, names in names_by_id.items()
        if len(names) > 1
    ]


def check_importable(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each bot's ROUTER import path must import and give an aiogram Router."""
    if conf.find_problems():
        return []
    from botdialogs.engine.bots import load_router

    messages: list[checks.CheckMessage] = []
    for bot in conf.get_settings().bots.values():
        try:
            load_router(bot.name)
        except Exception as error:  # noqa: BLE001 - reported as a check error, not swallowed
            messages.append(
                checks.Error(
                    f"BOTDIALOGS['BOTS'][{bot.name!r}]['ROUTER'] = {bot.router!r} cannot be "
                    f"loaded: {error}",
                    id="botdialogs.E013",
                )
            )
    return messages


def check_extras(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The optional dependencies the settings use must be installed (pip extras).

    - E017: ``BACKGROUND = "celery"`` or a bot in ``"queued"`` mode without Celery
      (``botdialogs[celery]``);
    - E018: ``BACKGROUND = "channels"`` or ``botdialogs.localtg`` in INSTALLED_APPS (its chat
      pages are websockets) without Channels (``botdialogs[channels]``).
    """
    from django.apps import apps

    if conf.find_problems():
        return []
    config = conf.get_settings()
    messages: list[checks.CheckMessage] = []
    queued = [bot.name for bot in config.bots.values() if bot.mode == "queued"]
    if find_spec("celery") is None and (config.background == "celery" or queued):
        uses = "BOTDIALOGS['BACKGROUND'] = 'celery'" if config.background == "celery" else ""
        if queued:
            uses = " and ".join(filter(None, [uses, f"bots {queued} in 'queued' mode"]))
        messages.append(
            checks.Error(
                f"Celery is not installed, and {uses} need it",
                hint='pip install "botdialogs[celery]", or use BACKGROUND "inline" and '
                "bot MODE 'inline'.",
                id="botdialogs.E017",
            )
        )
    if find_spec("channels") is None:
        users = []
        if config.background == "channels":
            users.append("BOTDIALOGS['BACKGROUND'] = 'channels'")
        if apps.is_installed("botdialogs.localtg"):
            users.append("'botdialogs.localtg' in INSTALLED_APPS (its chat pages are live)")
        if users:
            messages.append(
                checks.Error(
                    f"Channels is not installed, and {' and '.join(users)} need it",
                    hint='pip install "botdialogs[channels]".',
                    id="botdialogs.E018",
                )
            )
    return messages
