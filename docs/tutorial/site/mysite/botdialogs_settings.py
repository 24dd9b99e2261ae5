# Appended to mysite/settings.py (step 2 of the tutorial).
import os

INSTALLED_APPS += [  # noqa: F821 - defined above in settings.py
    "botdialogs",
    "botdialogs.localtg",  # local Telegram: a Bot API emulator, for development only
    "pizza",
]
ASGI_APPLICATION = "mysite.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

BOTDIALOGS = {
    "BOTS": {
        "default": {
            # No TOKEN: the bot talks to local Telegram, so it runs with no network.
            "ROUTER": "pizza.bot.build_router",
        },
    },
    # Where processes other than the web server (a shell, a worker) find local Telegram.
    "LOCAL_TELEGRAM_URL": os.environ.get("LOCAL_TELEGRAM_URL", "http://127.0.0.1:8000"),
}

# Tests: the test database is a file (the test server runs in another process), and that
# process gets it as DATABASE_URL from botdialogs.testing.server_env.
DATABASES["default"]["TEST"] = {"NAME": BASE_DIR / "test_db.sqlite3"}  # noqa: F821
if os.environ.get("DATABASE_URL", "").startswith("sqlite:///"):
    DATABASES["default"]["NAME"] = os.environ["DATABASE_URL"].removeprefix("sqlite:///")  # noqa: F821
