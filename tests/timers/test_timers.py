"""Dialog timers in one process: scheduling with the update's state, replace, cancel, firing
once, retries then failure, leases, and bad input (botdialogs.timers)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from aiogram import Router
from aiogram.exceptions import TelegramNetworkError
from aiogram.filters import Command
from aiogram.methods import SendMessage
from aiogram.types import Message
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from botdialogs import timers
from botdialogs.engine import bots
from botdialogs.models import DialogTimer
from botdialogs.testing import RecordingSession, recording_bots
from botdialogs.timers import api, firing
from tests.background import test_background as probe
from tests.background.test_background import CHAT, feed, top_data

pytestmark = pytest.mark.django_db(transaction=True)


async def on_remind(message: Message) -> None:
    """Schedules a timer inside the update (it commits with the update's state)."""
    await timers.aschedule("default", CHAT, CHAT, "update", after=0, data={"n": 11}, key="remind")


async def on_remind_then_fail(message: Message) -> None:
    await timers.aschedule("default", CHAT, CHAT, "update", after=0, data={"n": 12})
    raise RuntimeError("the handler's bug, after scheduling")


async def on_forget(message: Message) -> None:
    await timers.acancel(bot="default", chat_id=CHAT, key="remind")


def build_router() -> Router:
    """The probe bot of test_background plus commands that schedule and cancel timers."""
    router = Router(name="timers")
    router.message.register(on_remind, Command("remind"))
    router.message.register(on_remind_then_fail, Command("remindfail"))
    router.message.register(on_forget, Command("forget"))
    router.include_router(probe.build_router())
    return router


SETTINGS = {"BOTS": {"default": {"ROUTER": "tests.timers.test_timers.build_router"}}}


@pytest.fixture
def session() -> Iterator[RecordingSession]:
    """The timers bot; its Bot API calls are recorded (no HTTP)."""
    with recording_bots() as recording, override_settings(BOTDIALOGS=SETTINGS):
        yield recording


def fire_due(**options: Any) -> firing.FiringReport:
    """One firing run; by default one pass that does not wait for timers falling due."""
    options.setdefault("wait", False)

    async def run() -> firing.FiringReport:
        async with bots.bot_scope():
            return await firing.fire_due(**options)

    return async_to_sync(run)()


def update_timer(n: int, **kwargs: Any) -> str:
    return timers.schedule("default", CHAT, CHAT, "update", data={"n": n}, **kwargs)


def statuses() -> list[tuple[str, str]]:
    return sorted(DialogTimer.objects.values_list("key", "status"))


# -- scheduled in a handler ---------------------------------------------------------------------


def test_a_timer_scheduled_in_a_handler_commits_with_the_update_and_fires(
    session: RecordingSession,
) -> None:
    feed("/start")
    feed("/remind")
    timer = DialogTimer.objects.get()
    assert (timer.key, timer.status, timer.action["data"]) == ("remind", "pending", {"n": 11})
    assert timer.action["id"] == timer.id  # the timer's id is the action's

    report = fire_due()

    assert report.outcomes == {"fired": 1}
    assert top_data()["n"] == 11
    assert DialogTimer.objects.get().status == "fired"


def test_a_handler_that_schedules_then_raises_leaves_no_timer(session: RecordingSession) -> None:
    feed("/start")
    with pytest.raises(RuntimeError, match="handler's bug"):
        feed("/remindfail")
    assert not DialogTimer.objects.exists()


def test_cancel_in_a_handler_commits_with_the_update(session: RecordingSession) -> None:
    feed("/start")
    feed("/remind")
    feed("/forget")
    assert statuses() == [("remind", "cancelled")]
    assert fire_due().claimed == 0


# -- site code ----------------------------------------------------------------------------------


def test_site_code_schedules_after_commit_and_never_for_a_rollback(
    session: RecordingSession,
) -> None:
    with transaction.atomic():
        update_timer(1, after=0)
        assert not DialogTimer.objects.exists()  # not before the commit
    assert DialogTimer.objects.count() == 1
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        update_timer(2, after=0)
        1 / 0  # noqa: B018 - the surrounding transaction rolls back
    assert DialogTimer.objects.count() == 1


def test_scheduling_a_key_again_replaces_the_pending_timer(session: RecordingSession) -> None:
    feed("/start")
    first = update_timer(1, after=0, key="one")
    second = update_timer(2, after=0, key="one")
    assert dict(DialogTimer.objects.values_list("id", "status")) == {
        first: "cancelled",
        second: "pending",
    }
    session.calls.clear()

    assert fire_due().outcomes == {"fired": 1}
    assert top_data()["n"] == 2
    assert len(session.calls) == 1  # one edit, for the second timer only


def test_two_schedulers_of_one_key_at_once_end_with_the_last_one_pending(
    session: RecordingSession,
) -> None:
    feed("/start")
    first = update_timer(1, after=60, key="race")
    real = api._pending_by_key
    calls = []

    def late_view(*args: Any) -> Any:
        # The first look misses the other scheduler's timer (not committed yet when read).
        calls.append(args)
        return real(*args).none() if len(calls) == 1 else real(*args)

    with mock.patch.object(api, "_pending_by_key", late_view):
        second = update_timer(2, after=60, key="race")
    assert len(calls) == 2  # the insert met the constraint once, then replaced
    assert dict(DialogTimer.objects.values_list("id", "status")) == {
        first: "cancelled",
        second: "pending",
    }


def test_cancel_by_id_and_by_key(session: RecordingSession) -> None:
    feed("/start")
    by_id = update_timer(1, after=0)
    update_timer(2, after=0, key="k")
    timers.cancel(by_id)
    timers.cancel(bot="default", chat_id=CHAT, key="k")
    assert set(DialogTimer.objects.values_list("status", flat=True)) == {"cancelled"}
    assert fire_due().claimed == 0
    assert top_data().get("n") is None


def test_a_future_timer_waits_and_a_past_one_fires_at_the_next_tick(
    session: RecordingSession,
) -> None:
    feed("/start")
    update_timer(1, after=timedelta(hours=1))
    update_timer(2, at=timezone.now() - timedelta(days=1))
    assert fire_due().outcomes == {"fired": 1}
    assert top_data()["n"] == 2


# -- firing once --------------------------------------------------------------------------------


def test_a_timer_claimed_twice_fires_once(session: RecordingSession) -> None:
    feed("/start")
    update_timer(3, after=0)
    claimed = firing.claim_due()
    assert len(claimed) == 1
    session.calls.clear()

    async def fire_twice() -> list[str]:
        async with bots.bot_scope():
            return list(await asyncio.gather(firing.fire(claimed[0]), firing.fire(claimed[0])))

    assert sorted(async_to_sync(fire_twice)()) == ["duplicate", "fired"]
    assert len(session.calls) == 1


def test_a_leased_timer_is_not_claimed_until_its_lease_runs_out(
    session: RecordingSession,
) -> None:
    update_timer(1, after=0)
    assert len(firing.claim_due(lease=60)) == 1
    assert firing.claim_due() == []  # another firer holds it
    later = timezone.now() + timedelta(seconds=61)
    again = firing.claim_due(now=later)  # its firer died: claimed again
    assert [timer["attempts"] for timer in again] == [2]


def test_a_failing_action_is_retried_with_backoff_then_failed(
    session: RecordingSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed("/start")
    monkeypatch.setattr(firing, "RETRY_DELAYS", (0.0, 0.0))
    timer_id = update_timer(4, after=0)
    network_down = TelegramNetworkError(method=SendMessage(chat_id=1, text="x"), message="down")
    with mock.patch.object(firing, "perform", side_effect=network_down):
        outcomes = [fire_due().outcomes for _ in range(3)]
    assert outcomes == [{"retry": 1}, {"retry": 1}, {"failed": 1}]
    timer = DialogTimer.objects.get(id=timer_id)
    assert (timer.status, timer.attempts) == ("failed", 3)
    assert "down" in timer.last_error
    assert fire_due().claimed == 0


def test_an_action_whose_state_is_gone_fails_at_once(session: RecordingSession) -> None:
    feed("/start")
    timer_id = update_timer(5, after=0)
    action = DialogTimer.objects.get(id=timer_id).action
    del action["data"]
    action.update({"action": "switch_to", "state": "Gone:state"})  # removed since
    DialogTimer.objects.filter(id=timer_id).update(action=action)
    assert fire_due().outcomes == {"failed": 1}
    assert "Gone:state" in DialogTimer.objects.get(id=timer_id).last_error


# -- waiting between ticks ------------------------------------------------------------------------


def test_a_run_waits_for_a_timer_falling_due_within_its_budget_and_fires_it_on_time(
    session: RecordingSession,
) -> None:
    feed("/start")
    timer_id = update_timer(6, after=0.4)
    report = fire_due(wait=True, budget=2.0)
    timer = DialogTimer.objects.get(id=timer_id)
    assert (report.outcomes, timer.status) == ({"fired": 1}, "fired")
    # Not due when the run started, yet fired by that run (it waited, rather than leaving it
    # to the next tick), and never before its time.
    assert timer.finished_at is not None and timer.finished_at >= timer.due_at


def test_a_run_does_not_wait_for_a_timer_due_after_its_budget(session: RecordingSession) -> None:
    feed("/start")
    timer_id = update_timer(7, after=30)
    assert fire_due(wait=True, budget=0.5).claimed == 0
    timer = DialogTimer.objects.get(id=timer_id)
    # Returned by its budget: before the timer fell due, which it left pending.
    assert timezone.now() < timer.due_at and timer.status == "pending"


def test_a_full_claim_asks_once_for_another_firers_help(session: RecordingSession) -> None:
    feed("/start")
    for n in range(5):
        update_timer(20 + n, after=0)
    calls: list[int] = []
    report = fire_due(limit=2, on_backlog=lambda: calls.append(1))
    # Claims of 2, 2 and 1: the first full one asked for help, the later ones did not.
    assert (report.claimed, report.outcomes, calls) == (5, {"fired": 5}, [1])
    assert fire_due(limit=2, on_backlog=lambda: calls.append(1)).claimed == 0
    assert calls == [1]


def test_a_waiting_run_ends_when_its_worker_shuts_down(
    session: RecordingSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(firing, "_stopping", threading.Event())
    feed("/start")
    timer_id = update_timer(8, after=20)
    stopper = threading.Timer(0.3, firing.stop_waiting)  # celery's worker_shutting_down
    stopper.start()
    assert fire_due(wait=True, budget=30.0).claimed == 0
    stopper.join()
    timer = DialogTimer.objects.get(id=timer_id)
    # Ended by the shutdown: before the timer fell due (its budget had 30 s), left pending.
    assert timezone.now() < timer.due_at and timer.status == "pending"


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"at": datetime(2030, 1, 1)}, "aware"),
        ({}, "exactly one"),
        ({"after": 1, "at": timezone.now()}, "exactly one"),
        ({"after": "soon"}, "after must be"),
        ({"after": 1, "action": "switch_to", "state": "Nope:state"}, "Nope:state"),
        ({"after": 1, "data": {"when": datetime(2030, 1, 1)}}, "JSON"),
        ({"after": 1, "bot": "nobody"}, "nobody"),
        ({"after": 1, "key": ""}, "key"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    session: RecordingSession, kwargs: dict[str, Any], message: str
) -> None:
    bot = kwargs.pop("bot", "default")
    action = kwargs.pop("action", "update")
    if action == "update" and "data" not in kwargs:
        kwargs["data"] = {"n": 1}
    with pytest.raises(timers.BadTimer, match=message):
        timers.schedule(bot, CHAT, CHAT, action, **kwargs)
    assert not DialogTimer.objects.exists()


# -- admin --------------------------------------------------------------------------------------


def test_admin_lists_searches_cancels_and_fires_now(
    session: RecordingSession, admin_client: Any
) -> None:
    later = update_timer(1, after=3600)
    other = update_timer(2, after=3600)
    url = "/admin/botdialogs/dialogtimer/"
    page = admin_client.get(url, {"q": str(CHAT), "status__exact": "pending", "bot": "default"})
    assert page.status_code == 200
    assert later in page.content.decode() and "update" in page.content.decode()
    assert admin_client.get(url, {"q": "someone"}).context["cl"].result_count == 0
    detail = admin_client.get(f"{url}{later}/change/")
    assert detail.status_code == 200 and "&quot;n&quot;: 1" in detail.content.decode()

    admin_client.post(url, {"action": "fire_now", "_selected_action": [later]})
    assert DialogTimer.objects.get(id=later).due_at <= timezone.now()
    admin_client.post(url, {"action": "cancel_timers", "_selected_action": [other]})
    assert DialogTimer.objects.get(id=other).status == "cancelled"


def test_cancel_needs_an_id_or_a_full_key(session: RecordingSession) -> None:
    with pytest.raises(timers.BadTimer, match="Cancel by"):
        timers.cancel()
    with pytest.raises(timers.BadTimer, match="Cancel by"):
        timers.cancel("abc", key="k")
    with pytest.raises(timers.BadTimer, match="Cancel by"):
        timers.cancel(bot="default", key="k")
