"""Queued mode at full size: web processes and Celery workers, duplicates mixed in; prints the
throughput and whether every update was handled exactly once.

Users send numbered steps to the ``steps`` test bot (botdialogs/testing/bots.py) through
``--web`` uvicorn processes; ``--workers`` Celery workers handle them. Each update is
delivered once, twice to one web process, twice to both, or twice at the same moment to
both (bench/scenarios.py: the same run as tests/reliability/test_load.py).

    python bench/load_run.py [--users 1000] [--updates 20] [--web 2] [--workers 2]
    python bench/load_run.py --server postgres://postgres@127.0.0.1:5432   # that server

The database is new for the run and dropped afterwards: on a PostgreSQL server of the
script's own (needs the PostgreSQL binaries), or with ``--server`` under a fresh name on an
existing server. The broker is ``REDIS_URL`` (default redis://127.0.0.1:6379/0), on a queue
of the run's own. Exit status 0 only if every update was handled exactly once.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import run_on_scratch_database  # noqa: E402


def main() -> int:
    """Parse the command line and run on a scratch database; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=20, help="steps per user")
    parser.add_argument("--web", type=int, default=2, help="web processes")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (solo pool)")
    parser.add_argument("--threads", type=int, default=32, help="delivering threads")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the workers")
    return run_on_scratch_database(parser, run)


def run(args: argparse.Namespace, url: str) -> int:
    """Start the processes, run the load, print the result; 0 when it was all correct."""
    from bench.scenarios import LoadRun
    from bench.scratch import APP, WEBHOOK_SECRET, queued_run_env
    from botdialogs.testing import AsgiServer, CeleryWorker
    from botdialogs.testing.queues import broker_idle, purge_queue, redis_url
    from botdialogs.testing.webhook import Telegram

    broker, queue = redis_url(), f"load-run-{uuid.uuid4().hex[:10]}"
    env = queued_run_env(dict(os.environ), broker, queue, DATABASE_URL=url)
    print(
        f"load run: {args.users} users x {args.updates} updates, {args.web} web processes, "
        f"{args.workers} workers, broker {broker} (queue {queue})"
    )
    try:
        with ExitStack() as running:
            servers = [running.enter_context(AsgiServer(APP, env=env)) for _ in range(args.web)]
            for number in range(args.workers):
                worker_env = {**env, "LOCAL_TELEGRAM_URL": servers[number % len(servers)].url}
                running.enter_context(
                    CeleryWorker("project", env=worker_env, name=f"load{number}@%h")
                )
            load = LoadRun(
                Telegram(WEBHOOK_SECRET, deadline=300),
                [server.url for server in servers],
                users=args.users,
                updates=args.updates,
                first_user=1_000_000,
                seed=args.seed,
            )
            result = load.run(
                lambda: broker_idle(broker, queue), threads=args.threads, timeout=args.timeout
            )
    finally:
        purge_queue(broker, queue)

    duplicates = ", ".join(f"{how} {count}" for how, count in result.duplicates.items())
    print(f"posts: {result.posts} ({duplicates})")
    print(
        f"sent in {result.send_seconds:.1f} s; all handled after {result.total_seconds:.1f} s: "
        f"{result.throughput:.1f} updates/s"
    )
    if result.problems:
        print(f"verdict: WRONG - {len(result.problems)} problems, e.g.:")
        for problem in result.problems[:10]:
            print(f"  {problem}")
        return 1
    print("verdict: CORRECT - every update handled exactly once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
