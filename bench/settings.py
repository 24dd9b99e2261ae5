"""Django settings of the benchmarks: the demo site, with the counter dialog as its bot.

The demo bot stays the demo's; the benchmarks run ``tests/counter_bot.py`` (one window, a
"+1" button) so that ours and the peer handle exactly the same dialog. DEBUG is off, as in
production (with it on, Django keeps every ORM query in memory).

    DJANGO_SETTINGS_MODULE=bench.settings uvicorn project.asgi:application
"""

from project.settings import *  # noqa: F403
from project.settings import BOTDIALOGS, LOGGING

DEBUG = False
BOTDIALOGS = {
    **BOTDIALOGS,
    "BOTS": {
        "default": {**BOTDIALOGS["BOTS"]["default"], "ROUTER": "tests.counter_bot.build_router"}
    },
}
LOGGING = {**LOGGING, "loggers": {"botdialogs": {"handlers": ["console"], "level": "WARNING"}}}
