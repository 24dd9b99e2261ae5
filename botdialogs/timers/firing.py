"""Firing due dialog timers, once each: claim a batch, perform each action, record failures.

Claiming (:func:`claim_due`) leases a batch of due, pending timers to this firer for
``lease`` seconds (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so racing firers take
different rows). A lease is not what makes a timer fire once: each timer is performed
through the background path (:func:`botdialogs.background.perform`) with a
:class:`~botdialogs.timers.claims.TimerClaim`, passed down to the unit of work, which turns
the row "fired" in the transaction that commits the dialog state, under the chat lock, only
while it is still pending. So a timer
whose firer died is claimed again when its lease runs out and fired by another, and a timer
cancelled meanwhile never fires.

A failed attempt is retried with backoff (``RETRY_DELAYS``, or a 429's ``retry_after`` when
longer), then marked "failed" with its error; an action that can never succeed
(:class:`BadBackgroundAction`) fails at once.

Who calls it: the Celery task ``botdialogs.fire_due_timers`` (beat, about every second), or,
with the embedded defaults (Celery eager, no broker), :func:`run_in_process` on the web
server's event loop, from ASGI lifespan startup to shutdown
(:mod:`botdialogs.http.lifespan`). On SQLite run one firer at a time (it has no ``SKIP LOCKED``).

Between ticks: a run that has drained what is due reads the earliest claimable moment into
the process's cache (:mod:`.wakeups`); if it falls due within the run's budget (before the
next tick), the run sleeps until that moment and claims it then, instead of leaving it to
wait up to a whole tick. A tick whose cached next due time is further away than the tick
asks the database nothing: writers of new timers wake the firers (LISTEN/NOTIFY on
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiogram.exceptions import TelegramRetryAfter
from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from botdialogs.background.actions import describe, perform
from botdialogs.exceptions import BadBackgroundAction
from botdialogs.monitor import publish_action
from botdialogs.timers.claims import TimerClaim
from botdialogs.timers.wakeups import announce, next_due, stop_watching, watching

logger = logging.getLogger("botdialogs.timers")

#: Seconds a claimed timer belongs to its firer; then another may claim it again.
LEASE = 60.0
#: Timers claimed per query.
BATCH = 100
#: Timers of one batch performed at once (different chats proceed in parallel).
CONCURRENCY = 10
#: Seconds before attempt 2, 3, …; after the last one the timer is marked failed.
RETRY_DELAYS = (2.0, 10.0, 60.0, 300.0)
#: Shortest sleep between two claims while waiting for a timer (no busy loop when a due timer
#: is being claimed by another firer).
MIN_PAUSE = 0.02
#: Slices of a wait: how soon a waiting run notices :func:`stop_waiting`.
WAKE_SLICE = 0.05

FIRED = "fired"
DUPLICATE = "duplicate"
RETRY = "retry"
FAILED = "failed"


@dataclass
class FiringReport:
    """What one run of the firer did (returned by the Celery task, for logs)."""

    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        """Count one timer's outcome."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def claim_due(
    limit: int = BATCH, lease: float = LEASE, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Lease up to ``limit`` due, pending, unleased timers to this firer (oldest due first)."""
    from botdialogs.models import DialogTimer

    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            DialogTimer.objects.select_for_update(skip_locked=True)
            .filter(status=DialogTimer.Status.PENDING, due_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .order_by("due_at")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        DialogTimer.objects.filter(id__in=ids).update(
            leased_until=now + timedelta(seconds=lease), attempts=F("attempts") + 1
        )
        claimed = DialogTimer.objects.filter(id__in=ids).values("id", "action", "attempts")
        return [dict(timer) for timer in claimed]


async def fire(timer: dict[str, Any]) -> str:
    """Perform one claimed timer's action with its claim; FIRED, DUPLICATE, RETRY or FAILED."""
    claim = TimerClaim(timer_id=timer["id"])
    try:
        await perform(timer["action"], claim)
        # Without a unit of work (Redis, memory) the timer is marked fired now, after it ran;
        # a unit that did not commit raises here, even if its error was swallowed on the way.
        confirmed = await claim.confirm()
    except Exception as error:  # noqa: BLE001 - recorded, then retried or failed
        return await sync_to_async(record_failure)(timer, error)
    if not confirmed:
        return DUPLICATE
    publish_action(timer["action"], kind="timer", timer_id=timer["id"])
    return FIRED


def record_failure(timer: dict[str, Any], error: Exception) -> str:
    """Note a failed attempt: due again after a backoff, or failed when out of attempts.

    Only a pending timer changes status: a handler's bug commits the claim ("fired") and
    still raises, and that error is kept without firing again.
    """
    from botdialogs.models import DialogTimer

    attempts = int(timer["attempts"])
    final = isinstance(error, BadBackgroundAction) or attempts > len(RETRY_DELAYS)
    message = repr(error)[:2000]
    pending = DialogTimer.objects.filter(id=timer["id"], status=DialogTimer.Status.PENDING)
    if final:
        changed = pending.update(
            status=DialogTimer.Status.FAILED,
            last_error=message,
            leased_until=None,
            finished_at=timezone.now(),
        )
        logger.error("Dialog timer %s failed: %s", describe(timer["action"]), message)
    else:
        delay = RETRY_DELAYS[attempts - 1]
        if isinstance(error, TelegramRetryAfter):  # Telegram said when: not before that
            delay = max(delay, float(error.retry_after))
        changed = pending.update(
            due_at=timezone.now() + timedelta(seconds=delay),
            last_error=message,
            leased_until=None,
        )
        logger.warning("Dialog timer %s will be retried: %s", describe(timer["action"]), message)
    if not changed:
        DialogTimer.objects.filter(id=timer["id"]).update(last_error=message)
        return FIRED
    return FAILED if final else RETRY


async def fire_batch(timers: list[dict[str, Any]], concurrency: int = CONCURRENCY) -> list[str]:
    """Fire claimed timers, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(timer: dict[str, Any]) -> str:
        async with gate:
            return await fire(timer)

    return list(await asyncio.gather(*(one(timer) for timer in timers)))


def next_claimable(now: datetime | None = None) -> datetime | None:
    """The earliest moment a pending timer may be claimed; None when none is pending.

    A due timer leased to a firer counts from its lease's end: the moment another firer
    may take it over, should its firer have died. Two small queries on the partial index of
    pending timers (leased timers are due ones: the head of that index).
    """
    from botdialogs.models import DialogTimer

    now = now or timezone.now()
    pending = DialogTimer.objects.filter(status=DialogTimer.Status.PENDING)
    free = (
        pending.filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    leased = pending.filter(due_at__lte=now, leased_until__gte=now).aggregate(
        end=Min("leased_until")
    )["end"]
    moments = [moment for moment in (free, leased) if moment is not None]
    return min(moments) if moments else None


def read_next_due() -> float | None:
    """Read :func:`next_claimable` into this process's cache; seconds until it (or None)."""
    next_due.begin_read()
    try:
        moment = next_claimable()
    except BaseException:
        next_due.abort_read()
        raise
    next_due.end_read(None if moment is None else moment.timestamp())
    return None if moment is None else moment.timestamp() - time.time()


_stopping = threading.Event()


def stop_waiting() -> None:
    """Wake every run waiting for a timer and keep later ones from waiting (shutdown)."""
    _stopping.set()


async def _rest(seconds: float) -> bool:
    """Sleep ``seconds`` in short slices; False if :func:`stop_waiting` was called."""
    end = time.monotonic() + seconds
    while not _stopping.is_set():
        left = end - time.monotonic()
        if left <= 0:
            return True
        await asyncio.sleep(min(WAKE_SLICE, left))
    return False


async def fire_due(
    *,
    budget: float = 0.9,
    limit: int = BATCH,
    lease: float = LEASE,
    wait: bool = True,
    on_backlog: Callable[[], object] | None = None,
) -> FiringReport:
    """Claim and fire due timers, batch after batch, for at most about ``budget`` seconds.

    When nothing more is due and ``wait`` is on, a timer falling due before the budget ends
    is waited for (see the module's docstring); a run returns as soon as nothing is left to
    fire or wait for within its budget. ``on_backlog`` (sync) is called once when a claim
    comes back full, so the caller can ask another firer to help (the Celery task queues
    one more run for an idle worker).
    """
    report = FiringReport()
    deadline = time.monotonic() + budget
    while True:
        timers = await sync_to_async(claim_due)(limit, lease)
        report.claimed += len(timers)
        if on_backlog is not None and len(timers) == limit:
            await sync_to_async(on_backlog)()
            on_backlog = None
        for outcome in await fire_batch(timers):
            report.add(outcome)
        left = deadline - time.monotonic()
        if left <= 0:
            return report
        if len(timers) == limit:
            continue  # more may be due already
        if not wait or _stopping.is_set():
            return report
        pause = await sync_to_async(read_next_due)()
        if pause is None or pause > left or not await _rest(max(pause, MIN_PAUSE)):
            return report


def fire_now(timer_id: str) -> int:
    """Make a pending timer due now (admin "Fire now"): the next tick fires it."""
    from botdialogs.models import DialogTimer

    now = timezone.now()
    with transaction.atomic():
        pending = DialogTimer.objects.filter(id=timer_id, status=DialogTimer.Status.PENDING)
        changed = pending.update(due_at=now, leased_until=None)
        if changed:
            announce(now)
    return changed


# -- the in-process firer (embedded defaults: no broker, no beat) ------------------------------

_in_process: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


async def run_in_process(interval: float = 1.0) -> None:
    """Fire due timers on this loop, until cancelled; ask nothing while none is near.

    Each tick (``interval`` seconds) it claims only when the process's cached next due time
    (:mod:`.wakeups`) is within the tick or unknown; a wake-up from a writer ends the wait
    at once.
    """
    watch = await sync_to_async(watching)()
    try:
        while True:
            started = time.monotonic()
            version = next_due.version()
            try:
                if not await sync_to_async(watch.quiet_for)(interval):
                    await fire_due(budget=interval)
            except asyncio.CancelledError:
                raise
            except Exception:  # the firer outlives a passing database error
                next_due.forget()
                logger.exception("The in-process timer firer failed; trying again")
            # One tick per interval, however much of it the run spent waiting for timers;
            # a wake-up (a timer committed meanwhile) starts the next one at once.
            left = max(0.0, interval - (time.monotonic() - started))
            await _wait_for_wake_up(version, left)
    finally:
        await sync_to_async(stop_watching)()


async def _wait_for_wake_up(version: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    # The cache's condition is a threading one (the listener is a thread): wait in an
    # executor thread, which asks no database either.
    await loop.run_in_executor(None, next_due.wait_for_change, version, seconds)


def running_in_process() -> bool:
    """Whether an in-process firer (:func:`start_in_process`) runs in this process."""
    return any(not task.done() for task in list(_in_process.values()))


def start_in_process(interval: float = 1.0) -> bool:
    """Start :func:`run_in_process` on the running loop once; True if it started now."""
    loop = asyncio.get_running_loop()
    task = _in_process.get(loop)
    if task is not None and not task.done():
        return False
    for old in [old for old in _in_process if old.is_closed()]:
        del _in_process[old]
    _in_process[loop] = loop.create_task(run_in_process(interval), name="botdialogs-timers")
    return True


async def stop_in_process() -> bool:
    """Cancel the running loop's :func:`run_in_process` and wait for it; True if it ran."""
    task = _in_process.pop(asyncio.get_running_loop(), None)
    if task is None or task.done():
        return False
    task.cancel()
    await asyncio.wait({task})
    return True
