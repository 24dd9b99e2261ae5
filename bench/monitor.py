"""What the live monitor costs the update path: nobody watching vs the monitor code disabled.

Measured in one process, modes interleaved round by round (A B C, B C A, …) so that machine
noise falls on all of them alike; ratios are taken within each round, then the median:

- ``disabled``: the monitor's hooks replaced by no-ops (the webhook's ``UpdateEvents`` and
  the unit of work's ``watching`` check), as if the monitor did not exist;
- ``idle``: the real code, nobody watching (the case that must cost nothing);
- ``watched``: a watcher counted in this process: every event is built and sent to the
  channel layer (one member in the monitor group).

Each mode presses the counter dialog's "+1" (botdialogs/testing/bots.py) in ``--chats`` chats at
once, ``--presses`` times each, through :func:`botdialogs.http.webhook.process_update` (the
webhook's path: claim, unit of work, Dispatcher) on DjangoStorage; the Bot API is answered
from memory. Also printed: nanoseconds per call of the hooks themselves with nobody watching.

    .venv/bin/python bench/monitor.py                        # SQLite scratch file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/botdialogs_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/monitor.py
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{Path(tempfile.gettempdir()) / 'botdialogs_bench_monitor.sqlite3'}"
)

MODES = ("disabled", "idle", "watched")
# Update ids unique across runs: a scratch database remembers processed ids for a day.
_update_ids = itertools.count(time.time_ns() // 1000)


def fresh(update: dict[str, Any]) -> dict[str, Any]:
    """The update with an id no earlier run used."""
    return {**update, "update_id": next(_update_ids)}


class MonitorOff:
    """Stands in for ``UpdateEvents`` when the monitor is disabled."""

    error: BaseException | None = None

    def __enter__(self) -> MonitorOff:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def publish(self, bot: str, update: Any) -> None:
        return None


def never() -> bool:
    return False


def set_mode(mode: str) -> None:
    """Swap the hooks for no-ops (``disabled``) or the real ones; count a watcher or not."""
    from botdialogs.http import webhook
    from botdialogs.monitor import UpdateEvents, presence, watching
    from botdialogs.storage import unit_of_work

    disabled = mode == "disabled"
    webhook.UpdateEvents = MonitorOff if disabled else UpdateEvents  # type: ignore[misc]
    unit_of_work.watching = never if disabled else watching  # type: ignore[assignment]
    presence._presence.local = 1 if mode == "watched" else 0
    presence._presence.loop = asyncio.get_running_loop() if mode == "watched" else None
    presence.reset()


async def press_round(bot: Any, callbacks: dict[int, str], presses: int) -> tuple[float, float]:
    """Updates/s and CPU ms per update (this process, the sender thread included) of
    ``presses`` presses in every chat, all chats at once."""
    from botdialogs.http.webhook import process_update
    from botdialogs.testing import callback_update

    async def press_all(chat_id: int) -> None:
        for _ in range(presses):
            await process_update("default", fresh(callback_update(chat_id, callbacks[chat_id])))

    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(press_all(chat_id) for chat_id in callbacks))
    updates = len(callbacks) * presses
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    return updates / elapsed, cpu * 1000 / updates


async def engine_rounds(chats: int, presses: int, rounds: int) -> dict[str, Any]:
    from aiogram import Bot
    from channels.layers import get_channel_layer

    from bench.engine import check_counts, close_dispatcher, use_counter_bot
    from botdialogs.engine import bots
    from botdialogs.http import webhook
    from botdialogs.monitor import GROUP, sending
    from botdialogs.testing import RecordingSession, message_update

    use_counter_bot({"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": {}})
    bot = Bot(bots.bot_token("default"), session=RecordingSession())
    webhook.get_bot = lambda name: bot  # type: ignore[assignment]  # answered from memory
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_add(GROUP, await layer.new_channel())  # someone to receive the events
    first = int(time.time()) * 1000
    callbacks: dict[int, str] = {}
    set_mode("disabled")
    for chat_id in range(first, first + chats):
        await webhook.process_update("default", fresh(message_update(chat_id, "/start")))
        markup = bot.session.calls[-1].reply_markup  # type: ignore[attr-defined]
        callbacks[chat_id] = markup.inline_keyboard[0][0].callback_data
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    ratios: dict[str, list[float]] = {"idle": [], "watched": []}
    for number in range(rounds):
        order = MODES[number % 3 :] + MODES[: number % 3]
        measured = {}
        for mode in order:
            set_mode(mode)
            measured[mode], cpu_ms = await press_round(bot, callbacks, presses)
            results[mode].append(measured[mode])
            cpu[mode].append(cpu_ms)
        for mode in ratios:
            ratios[mode].append(measured[mode] / measured["disabled"])
    # The watched rounds' events leave before the loop ends (a counter, no event to wait on).
    while sending.pending():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    set_mode("disabled")
    check_counts(bot.session, callbacks, presses * rounds * len(MODES))
    await close_dispatcher(bots.get_dispatcher("default"))
    return {
        "updates_per_s": {mode: round(statistics.median(v), 1) for mode, v in results.items()},
        "cpu_ms_per_update": {mode: round(statistics.median(v), 3) for mode, v in cpu.items()},
        "ratio_to_disabled": {mode: round(statistics.median(v), 3) for mode, v in ratios.items()},
        "ratio_spread": {mode: [round(min(v), 3), round(max(v), 3)] for mode, v in ratios.items()},
    }


def hook_costs(number: int = 200_000) -> dict[str, float]:
    """Nanoseconds per call of each hook with nobody watching, and of an empty call."""
    from botdialogs.monitor import UpdateEvents, presence, publish, publish_action

    presence._presence.local = 0
    presence.reset()
    action = {"bot": "default", "user_id": 1, "chat_id": 1, "action": "start", "id": "x"}

    def empty() -> None:
        return None

    def update_events() -> None:
        with UpdateEvents() as events:
            pass
        events.publish("default", None)

    calls = {
        "empty function call": empty,
        "watching()": presence.watching,
        "publish(...)": lambda: publish("data.changed", bot=1, user_id=1, chat_id=1, keys=["a"]),
        "publish_action(...)": lambda: publish_action(action),
        "UpdateEvents enter/exit/publish": update_events,
    }
    return {
        name: round(timeit.timeit(call, number=number) / number * 1e9, 1)
        for name, call in calls.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from channels.layers import get_channel_layer

    hooks = hook_costs()
    engine = asyncio.run(engine_rounds(args.chats, args.presses, args.rounds))
    # An update passes UpdateEvents once and the unit of work's watching() once.
    per_update_ns = hooks["UpdateEvents enter/exit/publish"] + hooks["watching()"]
    report = {
        "database": connection.vendor,
        "channel_layer": type(get_channel_layer()).__name__,
        "hook_ns_per_call_nobody_watching": hooks,
        **engine,
        "hooks_share_of_update_cpu_nobody_watching": (
            f"{per_update_ns / (engine['cpu_ms_per_update']['disabled'] * 1e6):.4%}"
        ),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
