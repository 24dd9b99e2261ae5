"""Where an engine row's CPU goes: the counter flow of bench/engine.py under cProfile.

    DATABASE_URL=postgres://…/botdialogs_bench python -m bench.profile_engine --row django-pg

Starts the chats, then profiles their presses (CPU time, ``time.process_time``) and prints
the functions with the most time of their own, each as a share of the profiled total; a
profiler slows everything down about alike, so shares, not times, are the result.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from typing import Any

from bench import engine
from bench.processes import ROOT


async def profile(row: str, chats: int, presses: int) -> cProfile.Profile:
    """Run ``row`` once unprofiled (pools, caches), then profile a second run."""
    from botdialogs.engine import bots

    engine.use_counter_bot(engine.storage_setting(row))
    if row.startswith("dropin-"):
        dispatcher: Any = engine.dropin_dispatcher(row)
    else:
        dispatcher = bots.get_dispatcher("default")
    first = int(time.time()) * 1000
    profiler = cProfile.Profile(time.process_time)
    try:
        await engine.run_counter(dispatcher, chats, 2, first)
        profiler.enable()
        await engine.run_counter(dispatcher, chats, presses, first + chats)
        profiler.disable()
    finally:
        await engine.close_dispatcher(dispatcher)
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", choices=[r for r in engine.ROWS if r != "nodes"], required=True)
    parser.add_argument("--chats", type=int, default=30)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    engine.setup_django()
    profiler = asyncio.run(profile(args.row, args.chats, args.presses))
    stats = pstats.Stats(profiler)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values())
    own = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[: args.top]
    print(f"| function | own CPU share (of {total:.2f} s profiled) |")
    print("|---|---|")
    for (filename, line, name), entry in own:
        where = filename.split("site-packages/")[-1].removeprefix(f"{ROOT}/")
        print(f"| `{where}:{line} {name}` | {entry[2] / total:.1%} |")


if __name__ == "__main__":
    main()
