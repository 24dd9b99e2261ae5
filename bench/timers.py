"""Dialog timers on PostgreSQL with Celery workers and beat: fire lag and claims per second.

For each ``--pending`` size (default 10,000 and 100,000) it fills a scratch database
(``DATABASE_URL``'s server, the database name suffixed ``_bench``) with that many timers
due in an hour, then adds a burst of ``--burst`` timers all due at one moment ``--lead``
seconds ahead (one per chat: a ``start`` of the demo menu sent as a new message), and lets
``--workers`` Celery workers (solo pool) and one beat on Redis (``REDIS_URL``) fire them.
The bot talks to :mod:`bench.stub_api`. Printed:

- fire lag, due time -> the timer turned "fired" (the commit with the dialog state, after
  the action's Bot API call): p50, p99, max;
- claims/s: burst timers fired per second from the due time to the last commit;
- idle: database transactions per second while nothing is due (every pending timer an hour
  away), measured once per setup over ``--idle`` seconds: ``--web`` web processes firing in
  process (uvicorn, ASGI lifespan), the workers with beat, and beat alone (its
  DatabaseScheduler reading its own schedule): the workers' share is the difference.

``--firers web`` fires the burst with the web processes' in-process firers instead of
workers and beat. The scratch database is ``test_<name>`` plus ``TEST_DB_SUFFIX``
(``_bench`` when unset): give each concurrent run its own suffix.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/botdialogs \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/timers.py

With ``--lead 2`` (the default) the burst is scheduled ahead, as ``after=`` does: a firing
run that finds it due before the next tick waits for that moment. ``--lead 0`` schedules it
for now, as ``at=`` a past time does: it waits for the next tick (up to 1 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_bench")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_celery_beat.models import PeriodicTask  # noqa: E402

from bench.processes import Service, free_port  # noqa: E402
from botdialogs.models import DialogTimer  # noqa: E402
from botdialogs.testing import (  # noqa: E402
    CeleryBeat,
    CeleryWorker,
    ManagedProcess,
    database_url,
    wait_until,
)
from botdialogs.timers.wakeups import announce  # noqa: E402

BATCH = 5000
#: Seconds PostgreSQL may take to count an idle backend's last transactions.
STATS_DELAY = 12.0


def action(chat_id: int, timer_id: str) -> dict[str, object]:
    """The demo menu sent as a new message to ``chat_id`` (one Bot API call)."""
    return {
        "v": 1,
        "id": timer_id,
        "action": "start",
        "bot": "default",
        "user_id": chat_id,
        "chat_id": chat_id,
        "stack_id": None,
        "thread_id": None,
        "business_connection_id": None,
        "load": False,
        "state": "MainMenu:menu",
        "data": None,
        "mode": "RESET_STACK",
        "show_mode": "send",
    }


def add_timers(count: int, first_chat: int, due_in: timedelta) -> list[str]:
    """``count`` pending timers for chats ``first_chat``…, due ``due_in`` from now."""
    ids: list[str] = []
    due = timezone.now() + due_in
    for start in range(0, count, BATCH):
        rows = []
        for n in range(start, min(start + BATCH, count)):
            timer_id = uuid.uuid4().hex
            chat = first_chat + n
            rows.append(
                DialogTimer(
                    id=timer_id,
                    bot_name="default",
                    user_id=chat,
                    chat_id=chat,
                    due_at=due,
                    action=action(chat, timer_id),
                )
            )
            ids.append(timer_id)
        DialogTimer.objects.bulk_create(rows)
    # Written in bulk, not by timers.schedule: tell the firers as schedule() does.
    announce(due)
    return ids


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def transactions() -> int:
    """Transactions committed and rolled back in this database so far (all clients)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return int(cursor.fetchone()[0])


def idle_rate(seconds: float) -> float:
    """Database transactions per second over ``seconds`` (the firers idle meanwhile)."""
    # Backends report their counts at least every second when busy, and an idle one within
    # ten: the start-up's last transactions are let in first, and a long window keeps that
    # delay small next to the total.
    time.sleep(STATS_DELAY)
    first, started = transactions(), time.monotonic()
    time.sleep(seconds)
    last, ended = transactions(), time.monotonic()
    return (last - first - 2) / (ended - started)  # less this function's own reads


def web_firer(env: dict[str, str]) -> Service:
    """A web process (uvicorn, the demo's ASGI app) whose lifespan runs the timer firer."""
    port = free_port()
    command = ["-m", "uvicorn", "project.asgi:application", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    return Service(command, port, {**env, "TIMERS_IN_PROCESS": "1"})


def firers(kind: str, count: int, env: dict[str, str]) -> list[ManagedProcess]:
    """``count`` web processes, or ``count`` workers (solo pool) and one beat."""
    if kind == "web":
        return [web_firer(env) for _ in range(count)]
    workers: list[ManagedProcess] = [
        CeleryWorker("project", env=env, name=f"bench{n}@%h") for n in range(count)
    ]
    return [*workers, CeleryBeat("project", env=env)]


def warmed_up(processes: list[ManagedProcess]) -> None:
    """Start ``processes`` and wait until a first timer fired (not measured)."""
    for process in processes:
        process.start()
    warm_up = add_timers(1, 5_000_000 + DialogTimer.objects.count(), timedelta(0))
    fired_warm_up = DialogTimer.objects.filter(id__in=warm_up, status="fired")
    wait_until(fired_warm_up.exists, timeout=120, interval=0.2)


def stop(processes: list[ManagedProcess]) -> None:
    for process in reversed(processes):
        process.stop()


def idle_rates(web: int, workers: int, seconds: float, env: dict[str, str]) -> dict[str, float]:
    """Transactions/s with nothing due: web firers, workers + beat, beat alone."""
    rates = {}
    setups: dict[str, list[ManagedProcess]] = {
        f"{web} web processes (in-process firers)": firers("web", web, env),
        f"{workers} workers + beat": firers("workers", workers, env),
    }
    for label, processes in setups.items():
        try:
            warmed_up(processes)
            rates[label] = idle_rate(seconds)
        finally:
            stop(processes)
    beat = CeleryBeat("project", env=env)
    try:
        beat.start()
        wait_until(lambda: PeriodicTask.objects.exists(), timeout=120, interval=0.2)
        rates["beat alone (its DatabaseScheduler)"] = idle_rate(seconds)
    finally:
        beat.stop()
    return rates


def run(
    pending: int, burst: int, kind: str, count: int, lead: float, env: dict[str, str]
) -> dict[str, float]:
    """One size: fill, start the firers, fire the burst, measure."""
    DialogTimer.objects.all().delete()
    add_timers(pending, 10_000_000, timedelta(hours=1))
    # A table that filled up over days, not one bulk insert ago: vacuumed and analysed, its
    # pages written out, so autovacuum and the checkpoint don't run during the burst.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {DialogTimer._meta.db_table}")
        cursor.execute("CHECKPOINT")
    processes = firers(kind, count, env)
    try:
        warmed_up(processes)
        # Chats of their own per size: a chat fired at before has a stack to replace.
        burst_ids = add_timers(burst, 1 + pending, timedelta(seconds=lead))
        fired = DialogTimer.objects.filter(id__in=burst_ids, status="fired")
        wait_until(lambda: fired.count() == burst, timeout=600, interval=0.2)
    finally:
        stop(processes)
    rows = list(fired.values_list("due_at", "finished_at"))
    lags = [(done - due).total_seconds() for due, done in rows]
    span = (max(done for _, done in rows) - min(due for due, _ in rows)).total_seconds()
    return {
        "p50": percentile(lags, 0.50),
        "p99": percentile(lags, 0.99),
        "max": max(lags),
        "claims_s": burst / span if span else float("inf"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pending", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web", type=int, default=2, help="web processes (firing in process)")
    parser.add_argument("--firers", choices=["workers", "web"], default="workers")
    parser.add_argument("--lead", type=float, default=2.0, help="burst due in this many s")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window (0: skip)")
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: this measures workers on them")

    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True)
    port = free_port()
    stub = Service(["-m", "bench.stub_api", "--port", str(port)], port)
    try:
        stub.start()
        env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "BOT_MODE": "queued",
            "LOCAL_TELEGRAM_URL": f"http://127.0.0.1:{port}",
        }
        purge = [sys.executable, "-m", "celery", "-A", "project", "purge", "-f"]
        subprocess.run(purge, env=env, check=True, capture_output=True, timeout=60)
        count = args.workers if args.firers == "workers" else args.web
        results = {}
        for pending in args.pending:
            results[pending] = run(pending, args.burst, args.firers, count, args.lead, env)
            print(f"{pending} pending: {results[pending]}", flush=True)
        idle = idle_rates(args.web, args.workers, args.idle, env) if args.idle else {}
    finally:
        stub.stop()
        creation.destroy_test_db(name, verbosity=0)

    who = f"{args.workers} workers, 1 beat" if args.firers == "workers" else f"{args.web} web"
    print(
        f"\nDialog timers: burst of {args.burst} due at once {args.lead:g} s after scheduling, "
        f"{who}, PostgreSQL"
    )
    print(f"{'pending':>9} | {'lag p50':>8} | {'lag p99':>8} | {'lag max':>8} | {'claims/s':>9}")
    for pending, result in results.items():
        print(
            f"{pending:>9,} | {result['p50']:>7.2f}s | {result['p99']:>7.2f}s | "
            f"{result['max']:>7.2f}s | {result['claims_s']:>9.0f}"
        )
    for label, rate in idle.items():
        print(f"idle (nothing due), {label}: {rate:.2f} database transactions/s")


if __name__ == "__main__":
    main()
