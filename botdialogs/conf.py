"""botdialogs settings: ``settings.BOTDIALOGS`` read in one place, with documented defaults.

Every other module asks :func:`get_settings`; nothing else reads ``settings.BOTDIALOGS``.
The parsed object is cached and dropped on Django's ``setting_changed`` signal, so tests
that use ``override_settings`` see their values.

Shape (every key optional except ``BOTS`` and each bot's ``ROUTER``)::

    BOTDIALOGS = {
        "BOTS": {
            "default": {
                "TOKEN": "",                # "" -> talk to local Telegram (botdialogs.localtg)
                "ROUTER": "project.bot.dialogs.build_router",  # Router, or callable returning one
                "WEBHOOK_SECRET": "",       # checked against X-Telegram-Bot-Api-Secret-Token
                "MODE": "inline",           # "inline" | "queued" (Celery task per update)
                "ALLOWED_UPDATES": None,    # list for setWebhook, None = derive from the router
            },
        },
        "STORAGE": {"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": {}},
        "EVENT_ISOLATION": {"BACKEND": None, "CONFIG": {}},  # None: the one fitting STORAGE
        "BACKGROUND": "inline",             # "inline" | "celery" | "channels"
        "LOCAL_TELEGRAM_URL": "",           # "" -> the address this server was reached on
        "WEBHOOK_MAX_BODY_BYTES": 1048576,
        "WEBHOOK_BODY_TIMEOUT": 10.0,       # seconds to send the body; then 408, nothing done
        "UPDATE_ID_TTL": 86400,
        "FG_TIMEOUT": 10.0,
        "STALE_STATE_MESSAGE": "...",
        "OLD_BUTTON_ANSWER": "...",
        "BROADCAST_RATE": 25.0,             # messages/s per bot, shared by every worker
        "BROADCAST_REDIS_URL": "",          # "" -> the limit holds in this process only
        "LINK_TOKEN_MAX_AGE": 86400,        # seconds a site-user link token stays valid
        "TIMERS_IN_PROCESS": "auto",        # fire dialog timers in the web process: "auto"
                                            # (when Celery runs eagerly), True or False
        "TIMERS_LISTEN": True,              # PostgreSQL LISTEN for new timers: True, False
                                            # (ask every tick), or a direct "postgres://" URL
        "WEBAPP_INIT_DATA_MAX_AGE": 3600,   # seconds a Mini App's initData is trusted
        "WEBAPP_MAX_INIT_DATA_BYTES": 4096, # longer initData is refused (400)
        "WEBAPP_CREATE_USERS": False,       # sign-in of an unlinked Telegram user creates one
        "LOGIN_WIDGET_MAX_AGE": 86400,      # seconds a Login Widget sign-in is trusted
        "TELEGRAM_PUBLIC_KEY": "",          # "" -> Telegram's production Ed25519 key (hex)
        "SITE_USER_LANGUAGE": None,         # dotted path: f(site user pk) -> code or None
        "BOT_COMMANDS": None,               # dotted path: [(command, gettext_lazy(text))]
        "PAYMENT_PRE_CHECKOUT": None,       # dotted path: f(query) -> None | refusal text
        "PAYMENT_RECEIVED": None,           # dotted path: f(payment) -> [RowsUpdate, ...]
    }
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

BOT_MODES = ("inline", "queued")
BACKGROUND_BACKENDS = ("inline", "celery", "channels")

#: Every default in one place (the README's configuration table mirrors this dict).


def gettext_noop(message: str) -> str:
    """Mark ``message`` for ``makemessages``: Django's own reads the settings, unset here."""
    return message


DEFAULTS: dict[str, Any] = {
    "BOTS": {},
    "STORAGE": {"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": {}},
    "EVENT_ISOLATION": {"BACKEND": None, "CONFIG": {}},
    "BACKGROUND": "inline",
    "LOCAL_TELEGRAM_URL": "",
    "WEBHOOK_MAX_BODY_BYTES": 1024 * 1024,
    # Seconds a client has, once the webhook route has its headers, to send the whole body.
    "WEBHOOK_BODY_TIMEOUT": 10.0,
    "UPDATE_ID_TTL": 24 * 60 * 60,
    "FG_TIMEOUT": 10.0,
    # Marked for botdialogs' catalogs; translated when sent, in the user's language.
    "STALE_STATE_MESSAGE": gettext_noop(
        "This dialog has changed since you last used it. Please start again with /start."
    ),
    "OLD_BUTTON_ANSWER": gettext_noop("This button is no longer active."),
    # Telegram allows about 30 messages/s per bot and 1/s per chat; stay a little under.
    "BROADCAST_RATE": 25.0,
    "BROADCAST_REDIS_URL": "",
    # A deep link is tapped within minutes; a day leaves room and limits a leaked link.
    "LINK_TOKEN_MAX_AGE": 24 * 60 * 60,
    # Without a broker nothing runs beat: the web server fires dialog timers itself.
    "TIMERS_IN_PROCESS": "auto",
    # Firers hear of new timers by LISTEN/NOTIFY instead of asking PostgreSQL every tick. A
    # pooler in transaction mode (PgBouncer) drops LISTEN: give a direct URL, or False.
    "TIMERS_LISTEN": True,
    # Mini Apps (botdialogs.webapp). initData is signed when the app opens and reused for
    # every request the page makes: an hour bounds a leaked one without cutting a session.
    "WEBAPP_INIT_DATA_MAX_AGE": 60 * 60,
    # Real initData is well under 2 KB; more is not Telegram's.
    "WEBAPP_MAX_INIT_DATA_BYTES": 4096,
    "WEBAPP_CREATE_USERS": False,
    "LOGIN_WIDGET_MAX_AGE": 24 * 60 * 60,
    "TELEGRAM_PUBLIC_KEY": "",
    # botdialogs.i18n: the linked site user's language (a hook), the bots' menu of commands.
    "SITE_USER_LANGUAGE": None,
    "BOT_COMMANDS": None,
    # botdialogs.payments: the site's checks before a payment, its change when paid.
    "PAYMENT_PRE_CHECKOUT": None,
    "PAYMENT_RECEIVED": None,
}
BOT_DEFAULTS: dict[str, Any] = {
    "TOKEN": "",
    "WEBHOOK_SECRET": "",
    "MODE": "inline",
    "ALLOWED_UPDATES": None,
}
REQUIRED_BOT_KEYS = ("ROUTER",)


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with ``BOTDIALOGS``: the check id, the dotted key and what is wrong."""

    id: str
    key: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class BackendSettings:
    """A pluggable backend as channels spells it: a dotted class path and its kwargs."""

    backend: str | None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BotSettings:
    """One bot's settings. ``token == ""`` means the bot talks to local Telegram."""

    name: str
    token: str
    router: str
    webhook_secret: str
    mode: str
    allowed_updates: tuple[str, ...] | None

    @property
    def is_local(self) -> bool:
        """True when the bot has no real token and uses the Bot API emulator."""
        return not self.token


@dataclass(frozen=True)
class BotDialogsSettings:
    """The whole ``BOTDIALOGS`` setting, validated, with defaults applied."""

    bots: dict[str, BotSettings]
    storage: BackendSettings
    event_isolation: BackendSettings
    background: str
    local_telegram_url: str
    webhook_max_body_bytes: int
    update_id_ttl: int
    fg_timeout: float
    stale_state_message: str
    old_button_answer: str
    broadcast_rate: float
    broadcast_redis_url: str
    link_token_max_age: int
    timers_in_process: str | bool = "auto"
    timers_listen: bool | str = True
    webapp_init_data_max_age: int = DEFAULTS["WEBAPP_INIT_DATA_MAX_AGE"]
    webapp_max_init_data_bytes: int = DEFAULTS["WEBAPP_MAX_INIT_DATA_BYTES"]
    webapp_create_users: bool = False
    login_widget_max_age: int = DEFAULTS["LOGIN_WIDGET_MAX_AGE"]
    telegram_public_key: str = ""
    webhook_body_timeout: float = DEFAULTS["WEBHOOK_BODY_TIMEOUT"]
    site_user_language: str | None = None
    bot_commands: str | None = None
    payment_pre_checkout: str | None = None
    payment_received: str | None = None

    def bot(self, name: str) -> BotSettings:
        """The settings of bot ``name``; raises :class:`botdialogs.exceptions.UnknownBot`."""
        from botdialogs.exceptions import UnknownBot

        try:
            return self.bots[name]
        except KeyError:
            raise UnknownBot(f"No bot named {name!r} in BOTDIALOGS['BOTS']") from None


def _raw() -> Any:
    value = getattr(django_settings, "BOTDIALOGS", None)
    return {} if value is None else value


def find_problems(raw: Any = None) -> list[ConfigProblem]:
    """Everything wrong with ``raw`` (default: ``settings.BOTDIALOGS``), for system checks."""
    raw = _raw() if raw is None else raw
    problems: list[ConfigProblem] = []
    if not isinstance(raw, dict):
        return [ConfigProblem("botdialogs.E001", "BOTDIALOGS", "must be a dict")]
    unknown = set(raw) - set(DEFAULTS)
    for key in sorted(unknown):
        problems.append(
            ConfigProblem(
                "botdialogs.E002",
                f"BOTDIALOGS[{key!r}]",
                "is not a botdialogs setting",
                hint=f"Known keys: {', '.join(DEFAULTS)}",
            )
        )
    bots = raw.get("BOTS")
    if not isinstance(bots, dict) or not bots:
        problems.append(
            ConfigProblem(
                "botdialogs.E003",
                "BOTDIALOGS['BOTS']",
                "must be a non-empty dict of bot name -> bot settings",
                hint='e.g. {"default": {"ROUTER": "mysite.bot.build_router"}}',
            )
        )
        bots = {}
    for name, bot in bots.items():
        prefix = f"BOTDIALOGS['BOTS'][{name!r}]"
        if not isinstance(bot, dict):
            problems.append(ConfigProblem("botdialogs.E004", prefix, "must be a dict"))
            continue
        for key in REQUIRED_BOT_KEYS:
            if not bot.get(key) or not isinstance(bot.get(key), str):
                problems.append(
                    ConfigProblem(
                        "botdialogs.E005",
                        f"{prefix}[{key!r}]",
                        "is required: the import path of the bot's aiogram Router "
                        "(or of a callable returning one)",
                    )
                )
        for key in sorted(set(bot) - set(BOT_DEFAULTS) - set(REQUIRED_BOT_KEYS)):
            problems.append(
                ConfigProblem("botdialogs.E002", f"{prefix}[{key!r}]", "is not a bot setting")
            )
        if bot.get("MODE", "inline") not in BOT_MODES:
            problems.append(
                ConfigProblem(
                    "botdialogs.E006",
                    f"{prefix}['MODE']",
                    f"must be one of {', '.join(BOT_MODES)}",
                )
            )
        token = bot.get("TOKEN", "")
        if token and (not isinstance(token, str) or not _looks_like_token(token)):
            problems.append(
                ConfigProblem(
                    "botdialogs.E007",
                    f"{prefix}['TOKEN']",
                    "is not a Telegram bot token (expected '<digits>:<secret>')",
                )
            )
        if not isinstance(bot.get("WEBHOOK_SECRET", ""), str):
            problems.append(
                ConfigProblem("botdialogs.E008", f"{prefix}['WEBHOOK_SECRET']", "must be a str")
            )
        allowed = bot.get("ALLOWED_UPDATES")
        if allowed is not None and (
            not isinstance(allowed, list | tuple) or not all(isinstance(a, str) for a in allowed)
        ):
            problems.append(
                ConfigProblem(
                    "botdialogs.E009",
                    f"{prefix}['ALLOWED_UPDATES']",
                    "must be None or a list of update type names",
                )
            )
    for key in ("STORAGE", "EVENT_ISOLATION"):
        value = raw.get(key, DEFAULTS[key])
        if not isinstance(value, dict) or not isinstance(value.get("CONFIG", {}), dict):
            problems.append(
                ConfigProblem(
                    "botdialogs.E010",
                    f"BOTDIALOGS[{key!r}]",
                    'must be {"BACKEND": "dotted.path", "CONFIG": {...}}',
                )
            )
        elif key == "STORAGE" and not isinstance(value.get("BACKEND"), str):
            problems.append(
                ConfigProblem(
                    "botdialogs.E010", "BOTDIALOGS['STORAGE']['BACKEND']", "must be a dotted path"
                )
            )
    if raw.get("BACKGROUND", DEFAULTS["BACKGROUND"]) not in BACKGROUND_BACKENDS:
        problems.append(
            ConfigProblem(
                "botdialogs.E011",
                "BOTDIALOGS['BACKGROUND']",
                f"must be one of {', '.join(BACKGROUND_BACKENDS)}",
            )
        )
    for key in (
        "WEBHOOK_MAX_BODY_BYTES",
        "UPDATE_ID_TTL",
        "LINK_TOKEN_MAX_AGE",
        "WEBAPP_INIT_DATA_MAX_AGE",
        "WEBAPP_MAX_INIT_DATA_BYTES",
        "LOGIN_WIDGET_MAX_AGE",
    ):
        value = raw.get(key, DEFAULTS[key])
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problems.append(
                ConfigProblem("botdialogs.E012", f"BOTDIALOGS[{key!r}]", "must be a positive int")
            )
    for key in ("FG_TIMEOUT", "WEBHOOK_BODY_TIMEOUT"):
        seconds = raw.get(key, DEFAULTS[key])
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
            problems.append(
                ConfigProblem(
                    "botdialogs.E012", f"BOTDIALOGS[{key!r}]", "must be a positive number"
                )
            )
    rate = raw.get("BROADCAST_RATE", DEFAULTS["BROADCAST_RATE"])
    if not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0:
        problems.append(
            ConfigProblem(
                "botdialogs.E012", "BOTDIALOGS['BROADCAST_RATE']", "must be a positive number"
            )
        )
    for key in ("SITE_USER_LANGUAGE", "BOT_COMMANDS", "PAYMENT_PRE_CHECKOUT", "PAYMENT_RECEIVED"):
        if not isinstance(raw.get(key) or "", str):
            problems.append(
                ConfigProblem("botdialogs.E012", f"BOTDIALOGS[{key!r}]", "must be a dotted path")
            )
    if raw.get("TIMERS_IN_PROCESS", "auto") not in ("auto", True, False):
        problems.append(
            ConfigProblem(
                "botdialogs.E012",
                "BOTDIALOGS['TIMERS_IN_PROCESS']",
                'must be "auto", True or False',
            )
        )
    listen = raw.get("TIMERS_LISTEN", True)
    if not (isinstance(listen, bool) or (isinstance(listen, str) and "://" in listen)):
        problems.append(
            ConfigProblem(
                "botdialogs.E012",
                "BOTDIALOGS['TIMERS_LISTEN']",
                'must be True, False or a "postgres://" URL',
            )
        )
    problems.extend(_webapp_problems(raw))
    return problems


def _webapp_problems(raw: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    if not isinstance(raw.get("WEBAPP_CREATE_USERS", False), bool):
        problems.append(
            ConfigProblem("botdialogs.E012", "BOTDIALOGS['WEBAPP_CREATE_USERS']", "must be a bool")
        )
    key = raw.get("TELEGRAM_PUBLIC_KEY", "")
    if not isinstance(key, str) or (key and not re.fullmatch(r"[0-9a-f]{64}", key)):
        problems.append(
            ConfigProblem(
                "botdialogs.E012",
                "BOTDIALOGS['TELEGRAM_PUBLIC_KEY']",
                'must be "" or an Ed25519 public key as 64 lowercase hex digits',
            )
        )
    return problems


def _looks_like_token(token: str) -> bool:
    bot_id, sep, secret = token.partition(":")
    return bool(sep) and bot_id.isdigit() and bool(secret) and not any(c.isspace() for c in token)


def _backend(raw: dict[str, Any], key: str) -> BackendSettings:
    value = {**DEFAULTS[key], **raw.get(key, {})}
    return BackendSettings(backend=value.get("BACKEND"), config=dict(value.get("CONFIG") or {}))


@functools.cache
def get_settings() -> BotDialogsSettings:
    """The validated settings; raises ImproperlyConfigured naming the first bad key."""
    raw = _raw()
    problems = find_problems(raw)
    if problems:
        first = problems[0]
        raise ImproperlyConfigured(f"{first.id}: {first.key} {first.message}")
    bots = {}
    for name, bot in raw["BOTS"].items():
        merged = {**BOT_DEFAULTS, **bot}
        allowed = merged["ALLOWED_UPDATES"]
        bots[name] = BotSettings(
            name=name,
            token=merged["TOKEN"] or "",
            router=merged["ROUTER"],
            webhook_secret=merged["WEBHOOK_SECRET"] or "",
            mode=merged["MODE"],
            allowed_updates=tuple(allowed) if allowed is not None else None,
        )
    values = {**DEFAULTS, **raw}
    return BotDialogsSettings(
        bots=bots,
        storage=_backend(raw, "STORAGE"),
        event_isolation=_backend(raw, "EVENT_ISOLATION"),
        background=values["BACKGROUND"],
        local_telegram_url=(values["LOCAL_TELEGRAM_URL"] or "").rstrip("/"),
        webhook_max_body_bytes=values["WEBHOOK_MAX_BODY_BYTES"],
        update_id_ttl=values["UPDATE_ID_TTL"],
        fg_timeout=float(values["FG_TIMEOUT"]),
        webhook_body_timeout=float(values["WEBHOOK_BODY_TIMEOUT"]),
        stale_state_message=values["STALE_STATE_MESSAGE"],
        old_button_answer=values["OLD_BUTTON_ANSWER"],
        broadcast_rate=float(values["BROADCAST_RATE"]),
        broadcast_redis_url=values["BROADCAST_REDIS_URL"] or "",
        link_token_max_age=values["LINK_TOKEN_MAX_AGE"],
        timers_in_process=values["TIMERS_IN_PROCESS"],
        timers_listen=values["TIMERS_LISTEN"],
        webapp_init_data_max_age=values["WEBAPP_INIT_DATA_MAX_AGE"],
        webapp_max_init_data_bytes=values["WEBAPP_MAX_INIT_DATA_BYTES"],
        webapp_create_users=values["WEBAPP_CREATE_USERS"],
        login_widget_max_age=values["LOGIN_WIDGET_MAX_AGE"],
        telegram_public_key=values["TELEGRAM_PUBLIC_KEY"],
        site_user_language=values["SITE_USER_LANGUAGE"] or None,
        bot_commands=values["BOT_COMMANDS"] or None,
        payment_pre_checkout=values["PAYMENT_PRE_CHECKOUT"] or None,
        payment_received=values["PAYMENT_RECEIVED"] or None,
    )


def missing_required_secret(bot: BotSettings) -> bool:
    """Whether ``bot`` has a real token but no WEBHOOK_SECRET while DEBUG is off.

    Anyone who finds the webhook URL could then post forged updates that the bot would act
    on. Such a bot fails ``manage.py check`` (botdialogs.E014) and its webhook answers 403
    to every delivery, in case the checks were skipped. A local bot (no token) only talks to
    the Bot API emulator and is merely warned about (botdialogs.W001).
    """
    return not bot.webhook_secret and not bot.is_local and not django_settings.DEBUG


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "BOTDIALOGS":
        get_settings.cache_clear()
