"""Dialog timers: "in 10 minutes, if they have not answered…", durable and fired once.

Schedule from a handler (commits with the update's state) or from site code (after the
surrounding transaction commits)::

    from botdialogs import timers

    await timers.aschedule("default", user_id, chat_id, "update", after=600,
                           data={"reminded": True}, key="reminder")
    await timers.acancel(bot="default", chat_id=chat_id, key="reminder")

Owns: scheduling and cancelling (:mod:`.api`), claiming and firing (:mod:`.firing`),
the claim that commits a firing with the state (:mod:`.claims`).
May import: :mod:`botdialogs.background`, :mod:`botdialogs.engine`,
:mod:`botdialogs.storage`, :mod:`botdialogs.task_queue` and the core modules; only the entry
points (tasks, admin, http) import it.
"""

from botdialogs.timers.api import BadTimer, acancel, aschedule, build_timer, cancel, schedule
from botdialogs.timers.firing import FiringReport, claim_due, fire, fire_due, fire_now

__all__ = [
    "BadTimer",
    "FiringReport",
    "acancel",
    "aschedule",
    "build_timer",
    "cancel",
    "claim_due",
    "fire",
    "fire_due",
    "fire_now",
    "schedule",
]
