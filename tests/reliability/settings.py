"""Settings of the processes the reliability tests start: the demo project, plus test bots.

``steps`` (mode from ``BOT_MODE``, like the demo bot) and ``gate`` (always queued) are
described in :mod:`botdialogs.testing.bots` and :mod:`tests.reliability.bots`.
``RELIABILITY_QUEUE`` names the Celery queue, so a test's workers only take the tasks of its
own servers, whatever else shares the broker.
"""

import os

from project.settings import *  # noqa: F403
from project.settings import BOTDIALOGS

_secret = os.environ.get("TELEGRAM_WEBHOOK_SECRET", "")
BOTDIALOGS = {
    **BOTDIALOGS,
    "BOTS": {
        **BOTDIALOGS["BOTS"],
        "steps": {
            "ROUTER": "botdialogs.testing.bots.steps_router",
            "WEBHOOK_SECRET": _secret,
            "MODE": os.environ.get("BOT_MODE", "inline"),
        },
        "gate": {
            "ROUTER": "tests.reliability.bots.gate_router",
            "WEBHOOK_SECRET": _secret,
            "MODE": "queued",
        },
    },
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("RELIABILITY_QUEUE", "celery")
