"""Web servers SIGKILLed again and again while users order food; prints whether every step
landed exactly once.

The larger run of tests/reliability/test_server_kill.py: simulated users walk the demo's food
order through local Telegram and the real webhook (inline mode), every update redelivered
until accepted, while random ``--web`` uvicorn processes are SIGKILLed ``--kills`` times and
started again. Afterwards every cart must be exactly one order with exactly its items.

    python bench/server_kill.py [--users 20] [--carts 3] [--kills 30] [--web 1]
    python bench/server_kill.py --server postgres://postgres@127.0.0.1:5432   # that server

The database is new for the run and dropped afterwards (see bench/load_run.py). Exit status
0 only if nothing was lost or doubled.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import run_on_scratch_database  # noqa: E402


def main() -> int:
    """Parse the command line and run on a scratch database; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--carts", type=int, default=3, help="checkouts per user")
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--web", type=int, default=1, help="web processes")
    return run_on_scratch_database(parser, run)


def run(args: argparse.Namespace, url: str) -> int:
    """Walk, kill, check, print; 0 when every step landed exactly once."""
    from bench.scenarios import FoodOrderWalks, ServerKiller
    from bench.scratch import APP, WEBHOOK_SECRET, run_env
    from botdialogs.testing import AsgiServer
    from botdialogs.testing.webhook import Telegram
    from project.shop.models import Order

    env = run_env(dict(os.environ), DATABASE_URL=url, BOT_MODE="inline")
    servers = [AsgiServer(APP, env=env) for _ in range(args.web)]
    turns = itertools.cycle(servers)
    telegram = Telegram(WEBHOOK_SECRET, deadline=300)
    walks = FoodOrderWalks(
        telegram,
        lambda: f"{next(turns).url}/bots/default/webhook/",
        users=args.users,
        carts=args.carts,
        first_user=1_000_000,
        seed=args.seed,
    )
    # Gaps sized so the kills spread over the whole run.
    per_kill = max(2, walks.checkouts() * 6 // max(1, args.kills))
    killer = ServerKiller(
        servers, telegram, args.kills, seed=args.seed, min_gap=1, max_gap=per_kill
    )
    print(
        f"server kill: {args.users} users x {args.carts} checkouts, {args.kills} kills of "
        f"{args.web} web process(es)"
    )
    started = time.monotonic()
    with ExitStack() as running, ThreadPoolExecutor(max_workers=1) as background:
        for server in servers:
            running.enter_context(server)
        killing = background.submit(killer.run)
        failures = walks.run()
        killer.stop()
        killing.result()
    took = time.monotonic() - started

    problems = [f"a user could not go on: {failure}" for failure in failures]
    problems += walks.problems()
    orders = Order.objects.count()
    if orders != walks.checkouts():
        problems.append(f"{orders} orders for {walks.checkouts()} checkouts")
    restarts = sorted(killer.restart_seconds)
    print(
        f"{walks.updates_sent} updates in {took:.1f} s, {killer.kills} kills, "
        f"{telegram.retried()} failed attempts redelivered; restart median "
        f"{restarts[len(restarts) // 2] if restarts else 0:.1f} s"
    )
    if problems:
        print(f"verdict: WRONG - {len(problems)} problems, e.g.:")
        for problem in problems[:10]:
            print(f"  {problem}")
        return 1
    print("verdict: CORRECT - every step landed exactly once, one order per checkout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
