"""Django system checks for botdialogs: misconfiguration is found at ``manage.py check``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from botdialogs import conf


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Errors for every malformed ``BOTDIALOGS`` key; warnings for unsafe but valid ones."""
    problems = conf.find_problems()
    messages: list[checks.CheckMessage] = [
        checks.Error(f"{p.key} {p.message}", hint=p.hint or None, id=p.id) for p in problems
    ]
    if problems:
        return messages
    for bot in conf.get_settings().bots.values():
        if not bot.webhook_secret and not settings.DEBUG:
            messages.append(
                checks.Warning(
                    f"BOTDIALOGS['BOTS'][{bot.name!r}]['WEBHOOK_SECRET'] is empty while DEBUG is "
                    "off: anyone who finds the webhook URL can post updates to it",
                    hint="Set a secret (TELEGRAM_WEBHOOK_SECRET in the demo project) and run "
                    "setwebhook again.",
                    id="botdialogs.W001",
                )
            )
    return messages


def check_importable(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each bot's ROUTER import path must import and give an aiogram Router."""
    if conf.find_problems():
        return []
    from botdialogs.bots import load_router

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
