"""Settings of the full-size runs (bench/load_run.py, bench/server_kill.py): the demo site,
plus the ``steps`` bot (:func:`botdialogs.testing.bots.steps_router`, mode from
``BOT_MODE`` like the demo bot). ``RUN_QUEUE`` names the Celery queue of the run's own."""

import os

from project.settings import *  # noqa: F403
from project.settings import BOTDIALOGS

BOTDIALOGS = {
    **BOTDIALOGS,
    "BOTS": {
        **BOTDIALOGS["BOTS"],
        "steps": {
            "ROUTER": "botdialogs.testing.bots.steps_router",
            "WEBHOOK_SECRET": os.environ.get("TELEGRAM_WEBHOOK_SECRET", ""),
            "MODE": os.environ.get("BOT_MODE", "inline"),
        },
    },
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("RUN_QUEUE", "celery")
