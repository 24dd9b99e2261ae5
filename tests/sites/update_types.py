"""The demo site plus two bots for the update-type table: one with a handler for every
routable type, one with no handler (:mod:`tests.http.update_samples`)."""

import os

from project.settings import *  # noqa: F403
from project.settings import BOTDIALOGS
from tests.http.update_samples import TEST_BOTS

_secret = os.environ.get("TELEGRAM_WEBHOOK_SECRET", "")
BOTDIALOGS = {
    **BOTDIALOGS,
    # The table's pre_checkout_query row is a routed one: without the demo's payment check,
    # the bots' own handlers answer it (tests/payments covers PAYMENT_PRE_CHECKOUT).
    "PAYMENT_PRE_CHECKOUT": None,
    "BOTS": {
        **BOTDIALOGS["BOTS"],
        **{name: {**bot, "WEBHOOK_SECRET": _secret} for name, bot in TEST_BOTS.items()},
    },
}
