"""Webhook comparison, end to end: our ASGI webhook against aiogram's aiohttp webhook server.

Both serve the same counter dialogs (botdialogs/testing/bots.py) and call the same stub Bot API
(:mod:`bench.stub_api`, its own process); the same load generator drives both:

- **ours**: uvicorn, one worker, ``project.asgi:application`` with ``bench.settings`` (the
  demo site with the counter bot), DjangoStorage on PostgreSQL, inline mode, its local
  Telegram address (``LOCAL_TELEGRAM_URL``) pointed at the stub;
- **peer**: :mod:`bench.peer_server` (aiogram's ``SimpleRequestHandler`` on ``web.run_app``,
  RedisStorage + RedisEventIsolation), its Bot session pointed at the stub.

The load generator (this process, asyncio + aiohttp): U users in parallel, each sends /start,
reads the "+1" button from the stub's record of its chat, then presses it P times; each
request waits for its HTTP response before that user's next one. Measured over the presses:
updates/s, p50/p99 latency, the server process's CPU per update and peak RSS (VmHWM), and the
CPU per update of the PostgreSQL and Redis servers (whole-server, idle baseline subtracted).
At the end every chat must show "Count: P", or the run fails.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.processes import Service, cpu_seconds, free_port, peak_rss_kib, server_cpu_seconds

SECRET = "bench-webhook-secret"
#: ours-async-commit: ours with DjangoStorage's synchronous_commit=False, the durability of
#: the peer's Redis (which keeps nothing on disk on this machine).
TARGETS = ("ours", "ours-async-commit", "peer")
# Update ids must never repeat on our side (a repeated id is dropped as a redelivery).
_update_ids = itertools.count(int(time.time() * 1000))
_message_ids = itertools.count(1)


@dataclass(frozen=True)
class Endpoint:
    """Where a webhook server takes updates."""

    url: str
    secret: str = SECRET


def message_update(chat_id: int, text: str) -> dict[str, Any]:
    """A raw private-chat text message update."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Ann", "username": "ann"}
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            "from": user,
            "text": text,
        },
    }


def callback_update(chat_id: int, message_id: int, data: str) -> dict[str, Any]:
    """A raw button press update on the bot's message ``message_id``."""
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_update_ids)),
            "chat_instance": "1",
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ann", "username": "ann"},
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
                "text": "Count: 0",
            },
            "data": data,
        },
    }


async def post(http: aiohttp.ClientSession, endpoint: Endpoint, update: dict[str, Any]) -> None:
    """Deliver one update and wait for the response; anything but 200 fails the run."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": endpoint.secret}
    async with http.post(endpoint.url, json=update, headers=headers) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{endpoint.url} answered {response.status}: {body[:500]!r}")


async def last_message(http: aiohttp.ClientSession, stub_url: str, chat_id: int) -> dict:
    """The stub's record of the bot's last message in a chat."""
    async with http.get(f"{stub_url}/_chats/{chat_id}") as response:
        if response.status != 200:
            raise RuntimeError(f"the bot never answered in chat {chat_id}")
        return await response.json()


def plus_one(message: dict[str, Any]) -> str:
    """The callback data of the counter's "+1" button."""
    return message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]


class Chats:
    """The load generator's users: one private chat each."""

    def __init__(self, endpoint: Endpoint, stub_url: str, chat_ids: range) -> None:
        self.endpoint = endpoint
        self.stub_url = stub_url
        self.chat_ids = chat_ids
        self.buttons: dict[int, tuple[int, str]] = {}
        self.latencies: list[float] = []

    async def start(self, http: aiohttp.ClientSession) -> None:
        """/start in every chat, all at once; learn each chat's message and "+1" button."""

        async def one(chat_id: int) -> None:
            await post(http, self.endpoint, message_update(chat_id, "/start"))
            message = await last_message(http, self.stub_url, chat_id)
            self.buttons[chat_id] = (message["message_id"], plus_one(message))

        await asyncio.gather(*(one(chat_id) for chat_id in self.chat_ids))

    async def press(self, http: aiohttp.ClientSession, chat_id: int) -> float:
        """One press of "+1" in a chat; returns its latency in seconds."""
        message_id, data = self.buttons[chat_id]
        started = time.perf_counter()
        await post(http, self.endpoint, callback_update(chat_id, message_id, data))
        latency = time.perf_counter() - started
        self.latencies.append(latency)
        return latency

    async def press_all(self, http: aiohttp.ClientSession, presses: int) -> None:
        """Every user presses ``presses`` times, users in parallel, each waiting its turn."""

        async def one(chat_id: int) -> None:
            for _ in range(presses):
                await self.press(http, chat_id)

        await asyncio.gather(*(one(chat_id) for chat_id in self.chat_ids))

    async def check(self, http: aiohttp.ClientSession, presses: int) -> None:
        """Every chat shows "Count: <presses>": no press lost or counted twice."""
        wrong = {}
        for chat_id in self.chat_ids:
            text = (await last_message(http, self.stub_url, chat_id))["text"]
            if text != f"Count: {presses}":
                wrong[chat_id] = text
        if wrong:
            raise AssertionError(f"chats with a wrong count after {presses} presses: {wrong}")


def client() -> aiohttp.ClientSession:
    """The load generator's HTTP client (keep-alive, no connection limit)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


def stub_service() -> Service:
    """The stub Bot API, not started."""
    port = free_port()
    return Service(["-m", "bench.stub_api", "--port", str(port)], port)


def ours_service(
    stub_url: str,
    database_url: str,
    redis_url: str,
    synchronous_commit: bool = True,
    workers: int = 1,
) -> tuple[Service, Endpoint]:
    """uvicorn (``workers`` processes) on project.asgi with the counter bot, not started."""
    port = free_port()
    env = {
        "BENCH_SYNCHRONOUS_COMMIT": "1" if synchronous_commit else "0",
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOCAL_TELEGRAM_URL": stub_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "BOT_MODE": "inline",
    }
    env.pop("TELEGRAM_BOT_TOKEN", None)
    command = ["-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
    command += ["--log-level", "warning"]
    service = Service(command, port, env)
    return service, Endpoint(f"{service.url}/bots/default/webhook/")


def peer_service(stub_url: str, redis_url: str) -> tuple[Service, Endpoint]:
    """aiogram's aiohttp webhook server with the counter bot, not started."""
    port = free_port()
    command = ["-m", "bench.peer_server", "--port", str(port), "--api", stub_url]
    service = Service([*command, "--redis", redis_url, "--secret", SECRET], port)
    return service, Endpoint(f"{service.url}/webhook")


@dataclass(frozen=True)
class Deployment:
    """A running webhook server, where it takes updates, and its stub Bot API."""

    server: Service
    endpoint: Endpoint
    stub_url: str

    def chats(self, users: int, first_chat: int) -> Chats:
        """``users`` chats with this server, ids from ``first_chat``."""
        return Chats(self.endpoint, self.stub_url, range(first_chat, first_chat + users))


@contextmanager
def running(target: str, database_url: str, redis_url: str) -> Iterator[Deployment]:
    """The stub and the ``target`` server ("ours" or "peer"), started."""
    with stub_service() as stub:
        if target.startswith("ours"):
            durable = target == "ours"
            server, endpoint = ours_service(stub.url, database_url, redis_url, durable)
        else:
            server, endpoint = peer_service(stub.url, redis_url)
        with server:
            yield Deployment(server, endpoint, stub.url)


def _database_cpu() -> dict[str, float]:
    return {name: server_cpu_seconds(name) for name in ("postgres", "redis-server")}


async def _idle_rates(seconds: float) -> dict[str, float]:
    """CPU seconds per second the database servers use while we send nothing (others' load)."""
    before = _database_cpu()
    await asyncio.sleep(seconds)  # a measuring window, not synchronisation
    after = _database_cpu()
    return {name: (after[name] - before[name]) / seconds for name in before}


async def load(deployment: Deployment, users: int, presses: int, first_chat: int) -> dict:
    """Drive one running server; returns the measurements of the press phase."""
    server = deployment.server
    chats = deployment.chats(users, first_chat)
    async with client() as http:
        await chats.start(http)  # also warms the server up (imports, connections)
        idle = await _idle_rates(1.0)
        server_cpu = cpu_seconds(server.pid)
        databases = _database_cpu()
        started = time.perf_counter()
        await chats.press_all(http, presses)
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - server_cpu
        databases_after = _database_cpu()
        await chats.check(http, presses)
    updates = users * presses
    latencies = sorted(chats.latencies)
    result = {
        "updates": updates,
        "seconds": elapsed,
        "updates_per_s": updates / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "server_cpu_ms_per_update": server_cpu * 1000 / updates,
        "peak_rss_mib": peak_rss_kib(server.pid) / 1024,
    }
    for name, label in (("postgres", "postgres"), ("redis-server", "redis")):
        spent = databases_after[name] - databases[name] - idle[name] * elapsed
        result[f"{label}_cpu_ms_per_update"] = max(spent, 0.0) * 1000 / updates
    return result


def measure(
    target: str, users: int, presses: int, first_chat: int, database_url: str, redis_url: str
) -> dict[str, float]:
    """One end-to-end measurement of ``target`` ("ours" or "peer") with fresh processes."""
    with running(target, database_url, redis_url) as deployment:
        return asyncio.run(load(deployment, users, presses, first_chat))
