"""The reliability scenarios, shared by the tests (small) and the bench scripts (large).

- :class:`FoodOrderWalks`: simulated users walk the demo food order through local Telegram
  while a :class:`ServerKiller` SIGKILLs the web server now and then; every update is
  redelivered until accepted, as Telegram does. What must hold afterwards:
  :meth:`FoodOrderWalks.problems`.
- :class:`LoadRun`: many users send numbered steps to the ``steps`` bot through two web
  processes, with duplicate deliveries mixed in; :func:`step_problems` checks that every
  step landed exactly once.

Both read the database through Django (this process must be set up on the database the
servers use) and talk to the servers over HTTP only.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from botdialogs.testing import AsgiServer, message_update
from botdialogs.testing.webhook import Telegram
from project.bot.dialogs import MENU


def run_in_threads(jobs: Iterable[Callable[[], None]], threads: int) -> list[BaseException]:
    """Run ``jobs`` on a thread pool; returns the exceptions they raised.

    Each job's thread closes its Django connection when done (PostgreSQL test databases
    cannot be dropped while one is open).
    """

    def closing(job: Callable[[], None]) -> None:
        """Run ``job``, then close this thread's connection."""
        try:
            job()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(closing, job) for job in jobs]
    return [error for future in futures if (error := future.exception()) is not None]


# -- the demo food order under SIGKILL --------------------------------------------------------


@dataclass
class Shopper:
    """One simulated user and the carts they will check out, item keys in press order."""

    user_id: int
    first_name: str
    carts: list[list[str]]

    def expected_orders(self) -> list[dict[str, int]]:
        """The ``Order.items`` each checkout must store, in order."""
        orders = []
        for cart in self.carts:
            items: dict[str, int] = {}
            for key in cart:
                items[MENU[key]] = items.get(MENU[key], 0) + 1
            orders.append(items)
        return orders


class FoodOrderWalks:
    """Users who each: /start, then per cart: Order food, Yes, + items, Finish, Back to menu.

    A user's action is recorded in local Telegram by this process (as the chat page would)
    and its Update is delivered to the bot's webhook until a 2xx; the server may die at any
    moment meanwhile. ``webhook_url`` is asked before every attempt.
    """

    def __init__(
        self,
        telegram: Telegram,
        webhook_url: Callable[[], str],
        users: int,
        carts: int,
        first_user: int,
        seed: int,
        bot: str = "default",
    ) -> None:
        rng = random.Random(seed)
        self.telegram = telegram
        self.webhook_url = webhook_url
        self.bot = bot
        self.shoppers = [
            Shopper(
                user_id=first_user + number,
                first_name=f"U{number}",
                carts=[rng.choices(list(MENU), k=rng.randint(1, 3)) for _ in range(carts)],
            )
            for number in range(users)
        ]
        self.updates_sent = 0
        self._count = threading.Lock()

    def _deliver(self, update: dict[str, Any]) -> None:
        self.telegram.deliver(self.webhook_url, update)
        with self._count:
            self.updates_sent += 1

    def send(self, shopper: Shopper, text: str) -> None:
        """The user writes ``text``."""
        from botdialogs.localtg.chats import record_user_message

        profile = {"first_name": shopper.first_name}
        update, _ = record_user_message(self.bot, shopper.user_id, text, profile)
        self._deliver(update)

    def press(self, shopper: Shopper, label: str) -> None:
        """The user presses the newest button labelled ``label``."""
        from botdialogs.localtg.chats import record_press

        update, _ = record_press(self.bot, shopper.user_id, text=label)
        self._deliver(update)

    def walk(self, shopper: Shopper) -> None:
        """Every step of one user, in order (raises at the first step that cannot be made)."""
        self.send(shopper, "/start")
        for cart in shopper.carts:
            self.press(shopper, "Order food")
            self.press(shopper, "Yes")
            for key in cart:
                self.press(shopper, f"+ {MENU[key]}")
            self.press(shopper, "Finish")
            self.press(shopper, "Back to menu")

    def run(self, threads: int | None = None) -> list[BaseException]:
        """Walk every user at once; returns the steps that failed (a diverged user)."""
        jobs = [lambda shopper=shopper: self.walk(shopper) for shopper in self.shoppers]
        return run_in_threads(jobs, threads or len(self.shoppers))

    def problems(self) -> list[str]:
        """What is wrong in the database: every cart must be one order with exactly its items,
        and every user back in the main menu."""
        from botdialogs.models import DialogStack
        from project.shop.models import Order

        found = []
        for shopper in self.shoppers:
            orders = list(
                Order.objects.filter(telegram_user_id=shopper.user_id)
                .order_by("pk")
                .values_list("items", flat=True)
            )
            if orders != shopper.expected_orders():
                found.append(
                    f"user {shopper.user_id}: orders {orders}, expected {shopper.expected_orders()}"
                )
            stack = DialogStack.objects.filter(chat_id=shopper.user_id, stack_id="").first()
            if stack is None or stack.state != "MainMenu:menu":
                found.append(f"user {shopper.user_id}: ends in {stack and stack.state!r}")
        return found

    def checkouts(self) -> int:
        """How many checkouts the users made."""
        return sum(len(shopper.carts) for shopper in self.shoppers)


class ServerKiller:
    """SIGKILLs ``servers`` (a random one) ``kills`` times while updates are being handled,
    and starts the killed one again; :meth:`run` it in a thread of its own.

    A kill waits for ``min_gap``..``max_gap`` more accepted deliveries since the last one,
    and for a delivery in flight, then lands after a random jitter of up to ``jitter``
    seconds (so it hits the handler at different points). ``stop()`` ends it early.
    """

    def __init__(
        self,
        servers: Sequence[AsgiServer],
        telegram: Telegram,
        kills: int,
        seed: int,
        min_gap: int = 3,
        max_gap: int = 10,
        jitter: float = 0.15,
    ) -> None:
        self.servers = servers
        self.telegram = telegram
        self.planned = kills
        self.rng = random.Random(seed)
        self.gaps = (min_gap, max_gap)
        self.jitter = jitter
        self.kills = 0
        self.restart_seconds: list[float] = []
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Kill no more (the running restart, if any, completes)."""
        self._stopping.set()
        with self.telegram.changed:
            self.telegram.changed.notify_all()

    def run(self) -> None:
        """Kill, restart, repeat; returns after the last restart or :meth:`stop`."""
        for _ in range(self.planned):
            target = self.telegram.accepted_count() + self.rng.randint(*self.gaps)
            self.telegram.wait_for(
                lambda target=target: (
                    self._stopping.is_set() or self.telegram.accepted_count() >= target
                ),
                timeout=600,
            )
            self.telegram.wait_for(
                lambda: self._stopping.is_set() or self.telegram.in_flight > 0, timeout=600
            )
            if self._stopping.is_set():
                return
            time.sleep(self.rng.uniform(0, self.jitter))  # where in the handler it lands
            server = self.rng.choice(self.servers)
            server.kill()
            self.kills += 1
            started = time.monotonic()
            server.start()
            self.restart_seconds.append(time.monotonic() - started)


# -- numbered steps through two web processes (the load run) --------------------------------

#: How an update is delivered: once, twice to one server, twice to both, twice at once.
DUPLICATES = ("once", "twice", "twice-other", "concurrent")
DUPLICATE_WEIGHTS = (5, 1, 1, 1)


@dataclass
class LoadResult:
    """What a load run sent and how long until every update was handled."""

    users: int
    updates: int
    posts: int
    duplicates: dict[str, int]
    send_seconds: float
    total_seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Distinct updates handled per second, from the first post until the workers were
        done."""
        return self.users * self.updates / self.total_seconds


class LoadRun:
    """``users`` x ``updates`` numbered steps for the ``steps`` bot, spread over the web
    processes ``urls``, with duplicate deliveries mixed in (:data:`DUPLICATES`)."""

    def __init__(
        self,
        telegram: Telegram,
        urls: Sequence[str],
        users: int,
        updates: int,
        first_user: int,
        seed: int,
        bot: str = "steps",
    ) -> None:
        self.telegram = telegram
        self.urls = [f"{url}/bots/{bot}/webhook/" for url in urls]
        self.users = users
        self.updates = updates
        self.first_user = first_user
        self.seed = seed
        self.duplicates = dict.fromkeys(DUPLICATES, 0)
        self._count = threading.Lock()

    @property
    def chat_ids(self) -> list[int]:
        """The users' chat ids."""
        return list(range(self.first_user, self.first_user + self.users))

    def _user(self, number: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + number)
        chat_id = self.first_user + number
        for step in range(1, self.updates + 1):
            update_id = self.first_user * 1000 + number * self.updates + step
            update = message_update(
                chat_id, f"step {step}", update_id=update_id, first_name=f"L{number}"
            )
            first = rng.randrange(len(self.urls))
            other = (first + 1) % len(self.urls)
            how = rng.choices(DUPLICATES, DUPLICATE_WEIGHTS)[0]
            with self._count:
                self.duplicates[how] += 1
            if how == "concurrent":
                both = [
                    threading.Thread(target=self.telegram.deliver, args=(url, update))
                    for url in (self.urls[first], self.urls[other])
                ]
                for thread in both:
                    thread.start()
                for thread in both:
                    thread.join()
                continue
            self.telegram.deliver(self.urls[first], update)
            if how == "twice":
                self.telegram.deliver(self.urls[first], update)
            elif how == "twice-other":
                self.telegram.deliver(self.urls[other], update)

    def send(self, threads: int = 16) -> list[BaseException]:
        """Post every update (each user's in order); returns the deliveries that failed."""
        jobs = [lambda number=number: self._user(number) for number in range(self.users)]
        return run_in_threads(jobs, threads)

    def run(
        self, quiet: Callable[[], bool], threads: int = 16, timeout: float = 300.0
    ) -> LoadResult:
        """Send, wait until the workers are done (``quiet()`` holds: the broker has no task
        left, waiting or running), and check what was stored."""
        started = time.monotonic()
        failures = self.send(threads)
        sent = time.monotonic()
        settled = wait_quiet(quiet, timeout)
        finished = time.monotonic()
        problems = [f"delivery failed: {failure}" for failure in failures]
        if not settled:
            problems.append(f"the workers were still busy after {timeout}s")
        problems += step_problems(steps_of(self.chat_ids), self.chat_ids, self.updates)
        return LoadResult(
            users=self.users,
            updates=self.updates,
            posts=len(self.telegram.attempts),
            duplicates=dict(self.duplicates),
            send_seconds=sent - started,
            total_seconds=finished - started,
            problems=problems,
        )


def wait_quiet(quiet: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll until ``quiet()`` holds twice in a row (a task between the queue and a worker
    may be seen in neither place once); False at the deadline."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while in_a_row < 2:
        in_a_row = in_a_row + 1 if quiet() else 0
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)  # polling the broker: workers give no other signal
    return True


def steps_of(chat_ids: Sequence[int]) -> dict[int, list[int]]:
    """The steps the ``steps`` bot stored per chat (chats without any are left out)."""
    from botdialogs.models import FsmRecord

    rows = FsmRecord.objects.filter(chat_id__in=chat_ids, destiny="default")
    return {row.chat_id: list(row.data.get("steps", [])) for row in rows}


def step_problems(
    stored: dict[int, list[int]], chat_ids: Sequence[int], count: int, ordered: bool = False
) -> list[str]:
    """Every chat must hold steps 1..count exactly once (in order when ``ordered``)."""
    expected = list(range(1, count + 1))
    found = []
    for chat_id in chat_ids:
        steps = stored.get(chat_id, [])
        if (steps if ordered else sorted(steps)) == expected:
            continue
        missing = sorted(set(expected) - set(steps))
        doubled = sorted({step for step in steps if steps.count(step) > 1})
        found.append(f"chat {chat_id}: steps {steps} (missing {missing}, twice {doubled})")
    return found
