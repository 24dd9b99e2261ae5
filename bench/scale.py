"""Two web processes against one: the webhook end to end, with exactly once checked after.

The same load as the webhook suite (``--users`` chats pressing "+1" ``--presses`` times, each
waiting for its answer) against uvicorn ``--workers 1`` and ``--workers 2`` on
``project.asgi`` (the counter bot, inline mode, DjangoStorage on PostgreSQL), rows
interleaved over ``--rounds``. After each run it checks every chat shows the count of its
presses (each press's effect once) and that the database took every update id exactly once
(``botdialogs_processedupdate``). Printed: updates/s, p50/p99, CPU ms per update of the
server's processes (uvicorn's supervisor and its workers) and of PostgreSQL, and the ratio of
two processes to one, round by round.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/botdialogs_bench_scale \\
    REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python -m bench.scale

The database is created and migrated when missing, and emptied before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import webhook
from bench.processes import cpu_seconds, server_cpu_seconds
from bench.runner import migrate

ROWS = (1, 2)
#: Seconds two uvicorn workers may take to come up on a busy 2-core machine.
START_TIMEOUT = 300.0


def tree(pid: int) -> list[int]:
    """``pid`` and its living children (uvicorn's worker processes)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # exited while we looked
            if int(stat[1]) == pid:
                children.append(int(entry.name))
    return [pid, *children]


def tree_cpu(pid: int) -> float:
    total = 0.0
    for member in tree(pid):
        try:
            total += cpu_seconds(member)
        except (OSError, IndexError):
            continue
    return total


def empty(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as db:
        tables = [
            row[0]
            for row in db.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'botdialogs\\_%'"
            )
        ]
        if tables:
            db.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def updates_taken(database_url: str) -> tuple[int, int]:
    """Rows of processed update ids and distinct ids among them."""
    with psycopg.connect(database_url) as db:
        row = db.execute(
            "SELECT count(*), count(DISTINCT (bot_name, update_id)) FROM botdialogs_processedupdate"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def drive(deployment: webhook.Deployment, users: int, presses: int) -> dict[str, Any]:
    chats = deployment.chats(users, 1_000_000)
    async with webhook.client() as http:
        await chats.start(http)  # warms every worker up (imports, pools)
        server_cpu, postgres_cpu = tree_cpu(deployment.server.pid), server_cpu_seconds("postgres")
        started = time.perf_counter()
        await chats.press_all(http, presses)
        elapsed = time.perf_counter() - started
        server_cpu = tree_cpu(deployment.server.pid) - server_cpu
        postgres_cpu = server_cpu_seconds("postgres") - postgres_cpu
        await chats.check(http, presses)  # each press's effect once
    updates = users * presses
    latencies = sorted(chats.latencies)
    return {
        "updates_per_s": updates / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "server_cpu_ms": server_cpu * 1000 / updates,
        "postgres_cpu_ms": postgres_cpu * 1000 / updates,
        "sent": users * (presses + 1),
    }


def measure(workers: int, users: int, presses: int, database_url: str, redis_url: str) -> dict:
    """One run of ``workers`` web processes on an emptied database, checked after."""
    empty(database_url)
    with webhook.stub_service() as stub:
        server, endpoint = webhook.ours_service(stub.url, database_url, redis_url, workers=workers)
        server.start_timeout = START_TIMEOUT
        with server:
            result = asyncio.run(
                drive(webhook.Deployment(server, endpoint, stub.url), users, presses)
            )
    rows, distinct = updates_taken(database_url)
    if not rows == distinct == result["sent"]:
        raise AssertionError(f"update ids: {rows} rows, {distinct} distinct, {result['sent']} sent")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url or not database_url.startswith("postgres") or not redis_url:
        sys.exit("Set DATABASE_URL (PostgreSQL, a database of its own) and REDIS_URL")
    server_url, _, name = database_url.rpartition("/")
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    migrate(database_url, {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"})

    results: dict[int, list[dict]] = {workers: [] for workers in ROWS}
    for round_number in range(args.rounds):
        order = ROWS if round_number % 2 == 0 else tuple(reversed(ROWS))
        for workers in order:
            results[workers].append(
                measure(workers, args.users, args.presses, database_url, redis_url)
            )
            print(f"round {round_number + 1}, {workers} process(es): {results[workers][-1]}")
    print(
        f"\nWebhook, {args.users} users x {args.presses} presses, {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "| processes | updates/s | p50 ms | p99 ms | server CPU ms/update "
        "| PostgreSQL CPU ms/update |"
    )
    print("|---|---|---|---|---|---|")
    for workers, runs in results.items():
        cells = [
            statistics.median(run[key] for run in runs)
            for key in ("updates_per_s", "p50_ms", "p99_ms", "server_cpu_ms", "postgres_cpu_ms")
        ]
        print(
            f"| {workers} | {cells[0]:.0f} | {cells[1]:.1f} | {cells[2]:.1f} | "
            f"{cells[3]:.2f} | {cells[4]:.2f} |"
        )
    ratios = [
        two["updates_per_s"] / one["updates_per_s"]
        for one, two in zip(results[1], results[2], strict=True)
    ]
    print(
        f"2 processes / 1, round by round: {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(median {statistics.median(ratios):.2f}); every update id once, every press once"
    )


if __name__ == "__main__":
    main()
