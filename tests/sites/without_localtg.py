"""The demo site without local Telegram: a production site that installs only the core.

Its bot has a token and a secret (it talks to real Telegram); ``botdialogs.localtg`` is
neither installed nor routed.
"""

from project.settings import *  # noqa: F403
from project.settings import BOTDIALOGS, INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "botdialogs.localtg"]
ROOT_URLCONF = "tests.sites.without_localtg_urls"
BOTDIALOGS = {
    **BOTDIALOGS,
    "BOTS": {
        "default": {
            **BOTDIALOGS["BOTS"]["default"],
            "TOKEN": "123456:real-looking-token",
            "WEBHOOK_SECRET": "a-secret",
        }
    },
}
