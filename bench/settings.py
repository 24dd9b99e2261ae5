"""Django settings of the benchmarks: the demo site, with the counter dialog as its bot.

The demo bot stays the demo's; the benchmarks run ``botdialogs/testing/bots.py`` (one window, a
"+1" button) so that ours and the peer handle exactly the same dialog. DEBUG is off, as in
production (with it on, Django keeps every ORM query in memory).

    DJANGO_SETTINGS_MODULE=bench.settings uvicorn project.asgi:application
"""

import os

from project.settings import *  # noqa: F403
from project.settings import BOTDIALOGS, LOGGING

DEBUG = False
BOTDIALOGS = {
    **BOTDIALOGS,
    "BOTS": {
        "default": {
            **BOTDIALOGS["BOTS"]["default"],
            "ROUTER": "botdialogs.testing.bots.counter_router",
        }
    },
}
if os.environ.get("BENCH_SYNCHRONOUS_COMMIT") == "0":
    # Commits that do not wait for the WAL flush: the durability of a Redis without disk.
    BOTDIALOGS["STORAGE"] = {
        "BACKEND": "botdialogs.storage.DjangoStorage",
        "CONFIG": {"synchronous_commit": False},
    }
LOGGING = {**LOGGING, "loggers": {"botdialogs": {"handlers": ["console"], "level": "WARNING"}}}
