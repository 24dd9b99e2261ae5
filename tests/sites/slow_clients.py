"""The demo site with a short webhook body deadline, for the slow-client tests."""

from project.settings import *  # noqa: F403
from project.settings import BOTDIALOGS

#: Seconds; short so that the test's slow sockets are answered soon.
BODY_TIMEOUT = 2.0
BOTDIALOGS = {**BOTDIALOGS, "WEBHOOK_BODY_TIMEOUT": BODY_TIMEOUT}
