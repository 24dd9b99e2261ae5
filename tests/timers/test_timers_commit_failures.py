"""A timer firing whose unit of work fails to close is retried with backoff, never marked
fired or failed by that attempt, and the retry fires it once.

Faults at the storage backend's commit and rollback (:mod:`tests.support.faults`), after the
timer's action ran well. PostgreSQL in the second CI pass, SQLite in the first.
"""

from __future__ import annotations

import pytest

from botdialogs.models import DialogTimer
from botdialogs.testing import RecordingSession
from botdialogs.timers import firing
from tests.background.test_background import feed, top_data
from tests.support.faults import FAULTS, failing_close, stored
from tests.timers.test_timers import fire_due, session, update_timer

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["session"]  # the timers bot's fixture


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failure_at_commit_of_a_firing_is_retried_and_fires_once(
    session: RecordingSession, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed("/start")
    monkeypatch.setattr(firing, "RETRY_DELAYS", (0.0,) * len(firing.RETRY_DELAYS))
    timer_id = update_timer(6, after=0)
    session.calls.clear()
    with failing_close(fault) as injected:
        report = fire_due()
    assert injected == [fault]
    timer = DialogTimer.objects.get(id=timer_id)
    if stored(fault):  # COMMIT got through: fired, with its state; the error is noted
        assert (report.outcomes, timer.status, top_data()["n"]) == ({"fired": 1}, "fired", 6)
        assert "given back" in timer.last_error
    else:
        assert (report.outcomes, timer.status) == ({"retry": 1}, "pending")
        assert top_data().get("n", 0) == 0
    sent = len(session.texts())

    again = fire_due()
    assert again.outcomes == ({} if stored(fault) else {"fired": 1})
    assert session.texts()[sent:] == ([] if stored(fault) else ["main n=6"])
    timer.refresh_from_db()
    assert (timer.status, top_data()["n"]) == ("fired", 6)
    assert fire_due().claimed == 0
