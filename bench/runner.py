"""The benchmark runner: ``python -m bench`` (or ``bench/run``).

Prepares the databases, runs the suites interleaved (every row of every suite once per round,
A B C, A B C, …; within a suite each round starts one row further), prints median and spread
(min-max) and ratios against the peers measured in the same run, and writes bench/RESULTS.md
with the machine, the versions, the load and the commands. Ratios, not absolute times, are the
targets: this machine is shared and noisy.

Services: PostgreSQL and Redis. ``--postgres`` is the benchmark database (created and
migrated if missing; its botdialogs tables are emptied at the start; the growth databases are
named after it, ``<name>_growth_<size>``, and kept between runs); ``--redis`` its Redis
database (flushed at the start). Defaults: ``DATABASE_URL`` when it is PostgreSQL, else
``postgres://postgres@127.0.0.1:5432/botdialogs_bench``; ``REDIS_URL``, else
``redis://127.0.0.1:6379/6``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench import report
from bench.processes import ROOT, machine
from bench.suites import SUITES, Suite
from bench.webhook import SECRET

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/botdialogs_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/6"


@dataclass(frozen=True)
class Load:
    """How much work each measurement does."""

    chats: int  # engine and growth: chats at once
    presses: int  # engine and growth: presses per chat
    users: int  # webhook: users in parallel
    webhook_presses: int  # webhook: presses per user
    round_trip_presses: int  # round trips: counted presses of one chat
    growth_stacks: tuple[int, ...]
    admin_repeat: int


FULL = Load(50, 20, 50, 20, 20, (1_000, 100_000, 1_000_000), 5)
QUICK = Load(10, 5, 10, 5, 5, (1_000, 10_000), 2)


class Run:
    """What the suites share: the services, the load, chat ids, and child processes."""

    def __init__(self, postgres_url: str, redis_url: str, load: Load) -> None:
        self.postgres_url = postgres_url
        self.redis_url = redis_url
        self.load = load
        self.sqlite_url = ""
        self.sqlite_folder = ""
        self.commands: dict[str, list[str]] = {}
        # Time based, so that no run meets the chats of an earlier one.
        self._next_chat = int(time.time()) * 1000

    def new_chats(self, count: int) -> int:
        """The first of ``count`` chat ids nobody used yet."""
        first = self._next_chat
        self._next_chat += count
        return first

    def env(self, database_url: str | None) -> dict[str, str]:
        """The environment of a child process (SQLite when no database is given)."""
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": database_url or self.sqlite_url,
            "REDIS_URL": self.redis_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
        }
        env.pop("TELEGRAM_BOT_TOKEN", None)
        return env

    def note_command(self, suite: str, command: str) -> None:
        """Remember a command for RESULTS.md (each distinct one once)."""
        noted = self.commands.setdefault(suite, [])
        if command not in noted:
            noted.append(command)

    def child(
        self,
        module: str,
        args: Sequence[Any],
        database_url: str | None,
        timeout: float = 600,
    ) -> dict[str, Any]:
        """Run ``python -m module args`` and return the JSON line it printed last."""
        command = [sys.executable, "-m", module, *map(str, args)]
        # Chat ids differ on every run: shown as <id>.
        shown = [a if not a.isdigit() or len(a) < 10 else "<id>" for a in command[3:]]
        self.note_command(
            module.removeprefix("bench."),
            f"DATABASE_URL={database_url or self.sqlite_url} python -m {module} {' '.join(shown)}",
        )
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=self.env(database_url),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stderr[-5000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def database(self, suffix: str = "") -> str:
        """The URL of the benchmark database (or ``<name>_<suffix>``), created and migrated."""
        parts = urlsplit(self.postgres_url)
        name = parts.path.lstrip("/") + (f"_{suffix}" if suffix else "")
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as db:
            exists = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                db.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(parts._replace(path=f"/{name}"))
        migrate(url, self.env(url))
        return url

    def prepare(self) -> None:
        """The benchmark database (emptied), a fresh SQLite file, and an empty Redis database."""
        self.database()
        with psycopg.connect(self.postgres_url, autocommit=True) as db:
            tables = [
                row[0]
                for row in db.execute(
                    "SELECT tablename FROM pg_tables WHERE tablename LIKE 'botdialogs\\_%'"
                )
            ]
            if tables:
                db.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        self.sqlite_folder = tempfile.mkdtemp(prefix="botdialogs-bench-")
        self.sqlite_url = f"sqlite:///{self.sqlite_folder}/bench.sqlite3"
        migrate(self.sqlite_url, self.env(self.sqlite_url))
        import redis

        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()

    def close(self) -> None:
        """Remove the SQLite file (the PostgreSQL databases stay, for the next run)."""
        if self.sqlite_folder:
            shutil.rmtree(self.sqlite_folder, ignore_errors=True)

    def server_versions(self) -> tuple[str, str]:
        """PostgreSQL's and Redis's versions."""
        import redis

        with psycopg.connect(self.postgres_url) as db:
            postgres = db.execute("SHOW server_version").fetchone()[0]
        client = redis.Redis.from_url(self.redis_url)
        redis_version = client.info("server")["redis_version"]
        client.close()
        return str(postgres), str(redis_version)


def migrate(database_url: str, env: dict[str, str]) -> None:
    """``manage.py migrate`` on a database."""
    command = [sys.executable, "manage.py", "migrate", "--verbosity", "0"]
    result = subprocess.run(
        command, cwd=ROOT, env={**env, "DATABASE_URL": database_url}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate on {database_url} failed:\n{result.stderr[-3000:]}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small loads (a smoke test)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated suites, of: {', '.join(SUITES)}"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--postgres", default=default_postgres(), help="benchmark database URL")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS)
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write results")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.suites = [name.strip() for name in args.only.split(",") if name.strip()] or list(SUITES)
    unknown = set(args.suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(sorted(unknown))}; known: {', '.join(SUITES)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def default_postgres() -> str:
    """``DATABASE_URL`` when it is PostgreSQL, else the default benchmark database."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else DEFAULT_POSTGRES


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmarks and write the results."""
    args = parse_args(argv)
    started = time.monotonic()
    begun = datetime.datetime.now(datetime.UTC)
    run = Run(args.postgres, args.redis, QUICK if args.quick else FULL)
    facts = machine()
    print(f"preparing: {args.postgres}, {args.redis}, a SQLite file", flush=True)
    try:
        run.prepare()
        suites: list[Suite] = [SUITES[name](run) for name in args.suites]
        for suite in suites:
            suite.prepare()
        results = {suite.name: {row: [] for row in suite.rows} for suite in suites}
        for number in range(1, args.rounds + 1):
            for suite in suites:
                # Rows start one further each round: none is always first after another suite.
                shift = (number - 1) % len(suite.rows)
                for row in suite.rows[shift:] + suite.rows[:shift]:
                    result = suite.measure(row)
                    results[suite.name][row].append(result)
                    progress = f"round {number}/{args.rounds} {suite.name} {row}"
                    print(f"{progress}: {brief(result)}", flush=True)
        elapsed = time.monotonic() - started
        facts["load average (1 min) at the end"] = f"{os.getloadavg()[0]:.2f}"
        text = render(args, run, suites, results, facts, begun, elapsed)
    finally:
        run.close()
    print()
    print(text)
    args.output.write_text(text)
    print(f"written to {args.output} ({elapsed / 60:.1f} min)")


def brief(result: dict[str, Any]) -> str:
    """A progress line's worth of one measurement."""
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in result.items()
    )


def render(
    args: argparse.Namespace,
    run: Run,
    suites: Sequence[Suite],
    results: dict[str, dict[str, list[dict[str, Any]]]],
    facts: dict[str, str],
    begun: datetime.datetime,
    elapsed: float,
) -> str:
    """RESULTS.md."""
    invoked = ["python", "-m", "bench", *args.argv]
    load = run.load
    versions = report.versions(*run.server_versions())
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{shlex.join(invoked)}` on {begun:%Y-%m-%d %H:%M} UTC; the run took "
        f"{elapsed / 60:.1f} min. {args.rounds} rounds, suites interleaved (every row of every "
        "suite once per round, each round starting one row further). Values: median (min-max) "
        "over the rounds. Ratios are taken round by round against the peer measured in the same "
        "round: they, not the absolute numbers, are the targets (the machine is shared with "
        "other work).",
        "",
        "## Machine",
        "",
        *report.table(["", ""], [[key, value] for key, value in facts.items()]),
        "",
        "## Versions",
        "",
        *report.table(["", ""], [list(item) for item in versions.items()]),
        "",
        "## Load",
        "",
        f"{'quick' if args.quick else 'full'}: engine and growth {load.chats} chats x "
        f"{load.presses} presses; webhook {load.users} users x {load.webhook_presses} presses; "
        f"round trips {load.round_trip_presses} counted presses; growth sizes "
        f"{', '.join(f'{size:,}' for size in load.growth_stacks)} stacks; admin list "
        f"{load.admin_repeat} renders. PostgreSQL database `{urlsplit(run.postgres_url).path[1:]}`"
        f", Redis `{run.redis_url}`.",
        "",
    ]
    for suite in suites:
        lines += [f"## {suite.title}", "", *suite.report(results[suite.name]), ""]
    lines += [
        "## Commands",
        "",
        f"The run: `{shlex.join(invoked)}` (or `bench/run` with the same arguments). What it "
        "ran (chat ids shown as `<id>`; every child also had "
        f"`DJANGO_SETTINGS_MODULE=bench.settings`, `REDIS_URL={run.redis_url}` and a "
        "`TELEGRAM_WEBHOOK_SECRET`):",
        "",
        "```",
        *[command for commands in run.commands.values() for command in commands],
        "```",
        "",
    ]
    return "\n".join(lines)
