"""The suites the runner interleaves: what each measures per row, and how it reports.

A suite has ``rows``; the runner measures every row of every suite once per round (A B C,
A B C, …) so that machine noise falls on all of them alike, then asks each suite for its part
of the report. Ratios are computed round by round against the peer measured in the same round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bench import engine, round_trips, webhook
from bench.report import column, ratios, spread, table


class Run(Protocol):
    """What a suite uses of the runner's run (bench.runner.Run): named here, so the suites
    need no import of the runner that lists them."""

    postgres_url: str
    redis_url: str
    load: Any  # bench.runner.Load

    def new_chats(self, count: int) -> int: ...

    def note_command(self, suite: str, command: str) -> None: ...

    def child(
        self, module: str, args: Sequence[Any], database_url: str | None, timeout: float = 600
    ) -> dict[str, Any]: ...

    def database(self, suffix: str = "") -> str: ...


Results = dict[str, list[dict[str, Any]]]


class Suite:
    """One suite: ``rows`` to measure, a ``prepare`` step, and its part of the report."""

    name = ""
    title = ""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.rows: list[str] = []

    def prepare(self) -> None:
        """Anything to set up once, before the first round."""

    def measure(self, row: str) -> dict[str, Any]:
        """One measurement of ``row``."""
        raise NotImplementedError

    def report(self, results: Results) -> list[str]:
        """Markdown lines for RESULTS.md (also printed)."""
        raise NotImplementedError


class EngineSuite(Suite):
    """Dialog updates/s through a Dispatcher, per storage (bench/engine.py)."""

    name = "engine"
    title = "Engine: dialog updates/s through a Dispatcher"

    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.rows = list(engine.ROWS)

    def measure(self, row: str) -> dict[str, Any]:
        """One row in a process of its own, on the database the row needs."""
        load = self.run.load
        database = self.run.postgres_url if engine.ROWS[row][1] == "postgresql" else None
        args = ["--row", row, "--chats", load.chats, "--presses", load.presses]
        args += ["--first-chat", self.run.new_chats(load.chats)]
        return self.run.child("bench.engine", args, database)

    def report(self, results: Results) -> list[str]:
        """updates/s per row, and the ratios to RedisStorage and to the row's peer."""
        redis = column(results["redis"], "updates_per_s")
        rows = []
        for row, (description, _database) in engine.ROWS.items():
            speed = column(results[row], "updates_per_s")
            peer = engine.PEERS.get(row, "redis")
            rows.append(
                [
                    f"`{row}`",
                    description,
                    spread(speed),
                    spread(ratios(speed, redis), 2),
                    f"`{peer}` {spread(ratios(speed, column(results[peer], 'updates_per_s')), 2)}",
                    spread(column(results[row], "cpu_ms_per_update"), 2),
                ]
            )
        load = self.run.load
        return [
            f"{load.chats} chats at once, {load.presses} presses each (after /start); the Bot "
            "API answered from memory. Ratios: updates/s of the row / updates/s of `redis`, and of "
            "the row's peer (the drop-in rows: plain aiogram on plain RedisStorage), in the same "
            "round.",
            "",
            *table(
                ["row", "what", "updates/s", "vs redis", "vs peer", "CPU ms/update (bench)"],
                rows,
            ),
        ]


class WebhookSuite(Suite):
    """Ours (uvicorn + Django + DjangoStorage) against aiogram's aiohttp webhook server."""

    name = "webhook"
    title = "Webhook, end to end: ours against aiogram's aiohttp server"
    metrics = (
        ("updates/s", "updates_per_s", 0),
        ("p50 ms", "p50_ms", 1),
        ("p99 ms", "p99_ms", 1),
        ("server CPU ms/update", "server_cpu_ms_per_update", 2),
        ("PostgreSQL CPU ms/update", "postgres_cpu_ms_per_update", 2),
        ("Redis CPU ms/update", "redis_cpu_ms_per_update", 2),
        ("peak RSS MiB", "peak_rss_mib", 0),
    )

    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.rows = list(webhook.TARGETS)

    def measure(self, row: str) -> dict[str, Any]:
        """Fresh stub and server processes, load from this process."""
        load = self.run.load
        first_chat = self.run.new_chats(load.users)
        self.run.note_command(
            "webhook",
            f"bench.webhook.measure({row!r}, users={load.users}, presses={load.webhook_presses})"
            " from the runner: python -m bench.stub_api; "
            + (
                "DJANGO_SETTINGS_MODULE=bench.settings python -m uvicorn "
                "project.asgi:application --workers 1 --no-access-log"
                if row.startswith("ours")
                else "python -m bench.peer_server"
            ),
        )
        return webhook.measure(
            row,
            load.users,
            load.webhook_presses,
            first_chat,
            self.run.postgres_url,
            self.run.redis_url,
        )

    def report(self, results: Results) -> list[str]:
        """The metrics of every server, then ours/peer ratios."""
        peer = results["peer"]
        ours_rows = [row for row in self.rows if row != "peer"]
        rows = [
            [label, *(spread(column(results[row], key), digits) for row in [*ours_rows, "peer"])]
            for label, key, digits in self.metrics
        ]
        ratio_rows = []
        for label, key, _digits in self.metrics:
            if key in ("postgres_cpu_ms_per_update", "redis_cpu_ms_per_update"):
                continue
            ratio_rows.append(
                [
                    label,
                    *(
                        spread(ratios(column(results[row], key), column(peer, key)), 2)
                        for row in ours_rows
                    ),
                ]
            )
        cpu_peer = [_all_cpu(result) for result in peer]
        ratio_rows.append(
            [
                "CPU ms/update, server + PostgreSQL + Redis",
                *(
                    spread(ratios([_all_cpu(r) for r in results[row]], cpu_peer), 2)
                    for row in ours_rows
                ),
            ]
        )
        load = self.run.load
        return [
            f"{load.users} users in parallel, each /start then {load.webhook_presses} presses, "
            "each request waiting for its response; measured over the presses. Ours: uvicorn, 1 "
            "worker, `project.asgi:application` (bench.settings: the counter bot, DEBUG off), "
            "DjangoStorage on PostgreSQL, inline mode; `ours-async-commit` the same with "
            "`synchronous_commit=False`. Peer: aiogram `SimpleRequestHandler` "
            "(`handle_in_background=False`) + `setup_application` on `web.run_app`, RedisStorage "
            "(key builder with destiny) + RedisEventIsolation. Both call the same stub Bot API "
            "process. Database CPU is whole-server (/proc), minus the idle rate measured for 1 s "
            "before the presses (the servers are shared with other users of this machine).",
            "",
            *table(["metric", *ours_rows, "peer (aiogram aiohttp)"], rows),
            "",
            "Ratios ours / peer, round by round (updates/s: higher is better; the rest: lower "
            "is better; goal for peak RSS: <= 1.5):",
            "",
            *table(["metric", *(f"{row} / peer" for row in ours_rows)], ratio_rows),
        ]


def _all_cpu(result: dict[str, Any]) -> float:
    return (
        result["server_cpu_ms_per_update"]
        + result["postgres_cpu_ms_per_update"]
        + result["redis_cpu_ms_per_update"]
    )


class RoundTripSuite(Suite):
    """Round trips, statements and connections per press, counted by proxies."""

    name = "round-trips"
    title = "Round trips per button press, counted at the servers"

    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.rows = list(round_trips.PATHS)

    def measure(self, row: str) -> dict[str, Any]:
        """Dispatcher paths in a process of their own; webhook paths from here."""
        presses = self.run.load.round_trip_presses
        first_chat = self.run.new_chats(1)
        if row in round_trips.DISPATCHER_PATHS:
            args = ["--path", row, "--presses", presses, "--first-chat", first_chat]
            return self.run.child("bench.round_trips", args, self.run.postgres_url)
        target = row.removeprefix("webhook-")
        self.run.note_command(
            "round-trips",
            f"bench.round_trips.measure_webhook({target!r}, presses={presses}) from the runner",
        )
        return round_trips.measure_webhook(
            target, presses, first_chat, self.run.postgres_url, self.run.redis_url
        )

    def report(self, results: Results) -> list[str]:
        """Per press: PostgreSQL and Redis round trips, statements/commands, connections."""
        rows = []
        for row in self.rows:
            measured = results[row]
            rows.append(
                [
                    f"`{row}`",
                    spread(column(measured, "postgres_round_trips"), 1),
                    spread(column(measured, "postgres_round_trips_max"), 0),
                    spread(column(measured, "postgres_statements"), 1),
                    spread(column(measured, "postgres_connections"), 2),
                    spread(column(measured, "redis_round_trips"), 1),
                    spread(column(measured, "redis_statements"), 1),
                ]
            )
        total = {
            row: [
                result["postgres_round_trips"] + result["redis_round_trips"]
                for result in results[row]
            ]
            for row in self.rows
        }
        redis, peer = total["redis"], total["webhook-peer"]
        return [
            f"One chat, {round_trips.WARM_UP_PRESSES} presses to warm up (pools), then "
            f"{self.run.load.round_trip_presses} presses counted one after the other by "
            "counting proxies (botdialogs/testing/round_trips.py) in front of PostgreSQL and "
            "Redis. A round trip "
            "is a client->server flight after the server answered: connection setup, locks and "
            "BEGIN/COMMIT count. Statements are protocol messages (Query, Execute): botdialogs "
            "sends each round trip as one query string (round trip 1: BEGIN, the lock, the "
            "claim and five SELECTs; round trip 2: the writes and COMMIT).",
            "",
            *table(
                [
                    "path",
                    "PG round trips/press",
                    "PG most in one press",
                    "PG statements/press",
                    "PG connections opened/press",
                    "Redis round trips/press",
                    "Redis commands/press",
                ],
                rows,
            ),
            "",
            "Round trips to the stores per press, ratio to the peer in the same round: "
            f"Dispatcher `django-pg` / `redis`: {spread(ratios(total['django-pg'], redis), 2)}; "
            f"webhook ours / peer: {spread(ratios(total['webhook-ours'], peer), 2)}.",
        ]


def size_label(stacks: int) -> str:
    """1000 -> "1k", 1000000 -> "1M"."""
    if stacks >= 1_000_000 and stacks % 1_000_000 == 0:
        return f"{stacks // 1_000_000}M"
    if stacks >= 1000 and stacks % 1000 == 0:
        return f"{stacks // 1000}k"
    return str(stacks)


class GrowthSuite(Suite):
    """Per-update cost at growing numbers of stored stacks; admin list and bytes at the top."""

    name = "growth"
    title = "Growth: cost per update with many stored stacks"

    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.sizes = {size_label(stacks): stacks for stacks in run.load.growth_stacks}
        self.largest = size_label(max(run.load.growth_stacks))
        self.rows = [*self.sizes, "admin"]
        self.urls: dict[str, str] = {}
        self.fills: dict[str, dict[str, Any]] = {}
        self.bytes: dict[str, Any] = {}

    def prepare(self) -> None:
        """Each size's database, filled (or found filled) and measured for bytes."""
        for label, stacks in self.sizes.items():
            url = self.run.database(f"growth_{label.lower()}")
            self.urls[label] = url
            print(f"  growth database for {label} stacks: filling (cached when already full)")
            self.fills[label] = self.run.child(
                "bench.growth", ["fill", "--stacks", stacks], url, timeout=3600
            )
        self.bytes = self.run.child("bench.growth", ["size"], self.urls[self.largest])

    def measure(self, row: str) -> dict[str, Any]:
        """A size: updates/s on its database. "admin": the changelist at the largest size."""
        load = self.run.load
        if row == "admin":
            args = ["admin", "--repeat", load.admin_repeat]
            return self.run.child("bench.growth", args, self.urls[self.largest])
        args = ["measure", "--chats", load.chats, "--presses", load.presses]
        args += ["--first-chat", self.run.new_chats(load.chats)]
        return self.run.child("bench.growth", args, self.urls[row])

    def report(self, results: Results) -> list[str]:
        """ms per update per size, the ratio to the smallest, the admin list, the bytes."""
        smallest = next(iter(self.sizes))
        base = column(results[smallest], "ms_per_update")
        rows = []
        for label in self.sizes:
            cost = column(results[label], "ms_per_update")
            fill = self.fills[label]
            rows.append(
                [
                    label,
                    f"{fill['stacks']:,}",
                    spread(cost, 2),
                    spread(ratios(cost, base), 2),
                    spread(column(results[label], "cpu_ms_per_update"), 2),
                    f"{fill['filled']:,} in {fill['seconds']:.0f} s" if fill["filled"] else "none",
                ]
            )
        admin = results["admin"]
        load = self.run.load
        return [
            f"DjangoStorage on PostgreSQL, botdialogs' Dispatcher, {load.chats} new chats x "
            f"{load.presses} presses, in a database that already holds N stacks (each with its "
            "context and chat row, cloned from a real counter chat). ms/update = 1000 / "
            "(updates/s). Ratio: to the smallest size, round by round.",
            "",
            *table(
                [
                    "stacks",
                    "stored",
                    "ms/update",
                    f"vs {smallest}",
                    "CPU ms/update (bench process)",
                    "fill this run",
                ],
                rows,
            ),
            "",
            f"Admin dialog stack changelist at {self.largest} stacks (bench/admin_list.py, "
            f"median of {load.admin_repeat} renders, as a superuser): "
            f"{spread(column(admin, 'changelist_ms'), 1)} ms, against "
            f"{spread(column(admin, 'plain_ms'), 1)} ms for "
            "`DialogStack.objects.order_by('-updated_at')[:100]`: "
            f"{spread(column(admin, 'ratio'), 1)}x.",
            "",
            f"Database bytes per stored stack at {self.largest} ({self.bytes['stacks']:,} "
            "stacks; `pg_total_relation_size` of the stack and context tables, with TOAST and "
            f"indexes, / stacks): {self.bytes['bytes_per_stack']:.0f} B; with the chat row: "
            f"{self.bytes['bytes_per_stack_with_chat']:.0f} B.",
        ]


SUITES: dict[str, type[Suite]] = {
    suite.name: suite for suite in (EngineSuite, WebhookSuite, RoundTripSuite, GrowthSuite)
}
