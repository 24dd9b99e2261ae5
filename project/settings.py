"""Settings of the demo project, read from the environment.

With nothing set the project runs on one machine with nothing else: a SQLite file here,
an in-memory channel layer, Celery tasks run in-process, and the bot talks to the local
Telegram emulator. ``DATABASE_URL`` and ``REDIS_URL`` (and ``CELERY_BROKER_URL``) move it to
PostgreSQL, Redis and real workers. The README's configuration table lists every variable.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-local-development-only"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # Periodic jobs (clean-ups, the timer tick) are rows edited in the admin.
    "django_celery_beat",
    "botdialogs",
    "botdialogs.localtg",
    "project.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ under uvicorn too (runserver alone serves it, and only with DEBUG on).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server and in-process tasks share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # A file, not memory: test servers and workers in other processes open the same database.
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / f"test_db{os.environ.get('TEST_DB_SUFFIX', '')}.sqlite3")
    }
elif os.environ.get("TEST_DB_SUFFIX"):
    # Lets several test runs share one PostgreSQL server without sharing a database.
    DATABASES["default"]["TEST"] = {
        "NAME": f"test_{DATABASES['default']['NAME']}{os.environ['TEST_DB_SUFFIX']}"
    }
if env_bool("PGBOUNCER", False):
    # PgBouncer in transaction pooling: a session's server connection changes between
    # transactions, so no prepared statements (ours or Django's) and no server-side cursors.
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("PGBOUNCER=1 needs a PostgreSQL DATABASE_URL")
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default: channels-redis's 5 s
            # blocking pop (a consumer waiting for messages) then fails and drops every
            # idle websocket (django/channels_redis#422). Wait longer than the pop.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
# No broker configured: run tasks in this process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not (os.environ.get("CELERY_BROKER_URL") or REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a task no worker acknowledged within the visibility timeout (a worker
# that died mid-task). It must exceed the longest task, countdowns and ETAs included, or a
# running task is handed to a second worker as well. Abandoned tasks are looked for every
# few seconds (kombu's default sweep runs every 100 s), so one comes back soon after it.
_visibility_timeout = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT") or 3600)
if _visibility_timeout < 1:
    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must be a positive number of seconds")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _visibility_timeout,
    "unacked_restore_interval": max(1, min(10, _visibility_timeout // 2)),
    "unacked_restore_throttle": 1,
}
# `celery -A project beat` runs these. django-celery-beat's DatabaseScheduler copies them into
# its tables on start, where the admin ("Periodic tasks") shows and edits them; per-chat
# dialog timers are rows of botdialogs' own DialogTimer table, fired by the tick below.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "botdialogs-cleanup": {"task": "botdialogs.cleanup_expired", "schedule": 60 * 60},
    "botdialogs-timers": {
        "task": "botdialogs.fire_due_timers",
        "schedule": 1.0,
        # A tick no worker took within 5 s is dropped: the next one does its work (the key is
        # django-celery-beat's; it becomes the message's "expires").
        "options": {"expire_seconds": 5},
    },
    # The demo's "Today's special" to every chat, daily at 09:00 UTC (sent once a day, however
    # often it runs: project.shop.specials).
    "demo-daily-special": {
        "task": "shop.send_daily_special",
        "schedule": crontab(minute="0", hour="9"),
    },
}

# The demo bot's delays, in seconds (tests shorten them).
DEMO_COUNTER_TICK = float(os.environ.get("DEMO_COUNTER_TICK") or 1)
DEMO_FOOD_REMIND_AFTER = float(os.environ.get("DEMO_FOOD_REMIND_AFTER") or 60)
DEMO_FOOD_CLOSE_AFTER = float(os.environ.get("DEMO_FOOD_CLOSE_AFTER") or 300)
# Where Telegram opens the demo's Mini App ("Open the menu"): the site's public https
# address. "" gives a path on this site, which local Telegram's panel opens.
DEMO_SITE_URL = os.environ.get("DEMO_SITE_URL", "").rstrip("/")

BOTDIALOGS = {
    "BOTS": {
        "default": {
            "TOKEN": os.environ.get("TELEGRAM_BOT_TOKEN", ""),
            "ROUTER": "project.bot.dialogs.build_router",
            "WEBHOOK_SECRET": os.environ.get("TELEGRAM_WEBHOOK_SECRET", ""),
            "MODE": os.environ.get("BOT_MODE", "inline"),
        },
    },
    "BACKGROUND": os.environ.get("BOTDIALOGS_BACKGROUND", "celery" if REDIS_URL else "inline"),
    "LOCAL_TELEGRAM_URL": os.environ.get("LOCAL_TELEGRAM_URL", ""),
    # Broadcasts share one rate limit across every worker through Redis.
    "BROADCAST_REDIS_URL": REDIS_URL,
    # "auto": the web server fires dialog timers itself when there is no broker (no beat).
    "TIMERS_IN_PROCESS": {"1": True, "0": False}.get(
        os.environ.get("TIMERS_IN_PROCESS", ""), "auto"
    ),
    # The bot's menu of commands in each language (`manage.py setcommands default`).
    "BOT_COMMANDS": "project.bot.dialogs.COMMANDS",
    # The food order paid in Telegram Stars (docs/howto/payments.md).
    "PAYMENT_PRE_CHECKOUT": "project.shop.payments.check_order",
    "PAYMENT_RECEIVED": "project.shop.payments.mark_paid",
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# The languages the demo bot speaks (botdialogs.i18n maps each user's onto one of them),
# each named in its own language for the bot's Settings window.
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("ru", "Русский")]
# Catalogs of the demo bot's texts (`manage.py makemessages`; bin/setup compiles them).
LOCALE_PATHS = [BASE_DIR / "project" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The site's own CSS (pages under templates/, and the admin's few additions) lives in the
# top-level static/, beside templates/: the project is not an app, so it has no static/ of its own.
STATICFILES_DIRS = [BASE_DIR / "static"]
# While DEBUG is on WhiteNoise finds files in the apps, no collectstatic needed; in
# production `manage.py collectstatic` fills STATIC_ROOT with hashed, compressed files
# (project.settings_production).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Errors are logged with their traceback whatever DEBUG is. Django's own configuration sends
# "django.request" errors to the console only while DEBUG is on (and mails ADMINS otherwise):
# without this, a 500 in production left no trace at all.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "loggers": {
        # Not propagated: Django's "django" logger would print it a second time under DEBUG.
        "django.request": {
            "handlers": ["console", "mail_admins"],
            "level": "ERROR",
            "propagate": False,
        },
        "botdialogs": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}
