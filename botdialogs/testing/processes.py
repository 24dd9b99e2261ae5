"""Test kit: test your site's bot dialogs end to end through local Telegram, in a few lines.

A simulated user writes and presses buttons; local Telegram turns that into a real Update
POSTed to your bot's real webhook view; your handlers call the Bot API of local Telegram;
you read back what the user would see. Nothing is mocked: the server is a real ASGI server
in a subprocess, on the test database.

Usage with pytest-django (the database must be a file or a server, not SQLite ``:memory:``;
``transactional_db`` so the server process sees the rows)::

    import pytest
    from django.db import connection
    from botdialogs.testing import AsgiServer, LocalTelegram, server_env

    @pytest.fixture(scope="session")
    def server(django_db_setup, django_db_blocker):
        with django_db_blocker.unblock():
            env = server_env(connection.settings_dict)
        with AsgiServer("mysite.asgi:application", env=env) as running:
            yield running

    def test_menu(server, transactional_db):
        chat = LocalTelegram(server.url).chat(user_id=1001, first_name="Ann")
        chat.send("/start")
        menu = chat.wait_for_text("Hello, Ann! What would you like to do?")
        assert ["Order food"] in menu.buttons
        chat.press("Order food")
        assert chat.wait_for_text("Are you hungry?").message_id == menu.message_id  # edited

``server_env`` points the subprocess at the test database and at itself for local
Telegram (``LOCAL_TELEGRAM_URL``); add your own variables with ``server_env(..., **extra)``.
Queued bots need a Celery worker on the same environment: ``CeleryWorker("mysite", env=env)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

DEFAULT_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A ``DATABASE_URL`` for the database of a Django connection's ``settings_dict``."""
    engine, name = settings_dict["ENGINE"], str(settings_dict["NAME"])
    if engine.endswith("sqlite3"):
        return f"sqlite:///{os.path.abspath(name)}"
    if not engine.endswith("postgresql"):
        raise ValueError(f"No DATABASE_URL form for {engine}")
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(name, safe='')}"


def server_env(settings_dict: Mapping[str, Any], **extra: str) -> dict[str, str]:
    """This process's environment, on the (test) database ``settings_dict`` names."""
    env = {**os.environ, "DATABASE_URL": database_url(settings_dict)}
    env.update(extra)
    return env


def wait_until(
    condition: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"Condition not met within {timeout}s: {condition!r}")
        time.sleep(interval)


class ManagedProcess:
    """A subprocess with its output in a temporary file (shown when it fails).

    It runs in a process group of its own, so stopping it also stops what it started (Celery's
    pool children, a reloader's server): nothing is left holding the test database open.
    """

    def __init__(
        self,
        command: list[str],
        env: Mapping[str, str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        popen_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.command = command
        self.env = dict(env)
        self.cwd = cwd
        # Extra subprocess.Popen arguments, e.g. user/group to drop root for a server.
        self.popen_options = dict(popen_options or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="botdialogs-", suffix=".log")  # noqa: SIM115

    @property
    def pid(self) -> int:
        """The process id of the running (or last) process."""
        if self.process is None:
            raise RuntimeError("The process was never started")
        return self.process.pid

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process (again, after :meth:`kill`: the log goes on)."""
        if self.running:
            raise RuntimeError(f"Already running: {self.command}")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self.popen_options,
        )

    def output(self) -> str:
        """Everything the process printed so far."""
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as log:
            return log.read()

    def _signal_group(self, signal_number: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(self.process.pid, signal_number)

    def kill(self) -> None:
        """SIGKILL the process and its group at once and reap it, as a crash would.

        The process can be started again with :meth:`start`.
        """
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after ``timeout``), wait for it, and
        drop its log.

        Returns only once the process is reaped: callers may flush or drop the database next.
        """
        if self.process is not None:
            if self.process.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    self.process.wait()
            # Children that outlived a leader killed by someone else (a test's SIGKILL).
            self._signal_group(signal.SIGKILL)
        self.log.close()

    def __enter__(self) -> ManagedProcess:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ListeningProcess(ManagedProcess):
    """A server subprocess that is ready once its TCP port on 127.0.0.1 accepts connections.

    :meth:`start` returns only then; a process that exits first, or does not listen within
    ``start_timeout`` seconds, raises with what it printed.
    """

    def __init__(
        self,
        command: list[str],
        env: Mapping[str, str],
        port: int,
        *,
        start_timeout: float = 60.0,
        cwd: str | os.PathLike[str] | None = None,
        popen_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(command, env, cwd=cwd, popen_options=popen_options)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.start_timeout = start_timeout

    def start(self) -> None:
        """Start the process and return once it accepts connections."""
        super().start()
        try:
            wait_until(self._ready, timeout=self.start_timeout)
        except TimeoutError:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.command[0]} exited:\n{self.output()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True


class AsgiServer(ListeningProcess):
    """uvicorn serving ``app`` on a free port; ``LOCAL_TELEGRAM_URL`` points at itself."""

    def __init__(self, app: str, env: Mapping[str, str], port: int | None = None) -> None:
        port = port or free_port()
        env = {**env, "LOCAL_TELEGRAM_URL": f"http://127.0.0.1:{port}"}
        command = [sys.executable, "-m", "uvicorn", app, "--port", str(port)]
        super().__init__([*command, "--host", "127.0.0.1", "--log-level", "warning"], env, port)


class CeleryWorker(ManagedProcess):
    """``celery -A app worker`` on ``env``'s broker: one process (solo pool) by default.

    ``pool="prefork"`` with ``concurrency`` runs tasks in child processes, as in production
    (a test can then kill a child mid-task). ``name`` sets the worker's node name.
    """

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        pool: str = "solo",
        concurrency: int | None = None,
        name: str | None = None,
    ) -> None:
        command = [sys.executable, "-m", "celery", "-A", app, "worker", "-P", pool]
        if concurrency is not None:
            command += ["--concurrency", str(concurrency)]
        if name is not None:
            command += ["--hostname", name]
        flags = ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        super().__init__([*command, *flags, "--loglevel", "WARNING"], env)


class CeleryBeat(ManagedProcess):
    """``celery -A app beat`` with the app's scheduler (the demo: django-celery-beat's
    DatabaseScheduler); its pid file is its own, so several beats can run side by side."""

    def __init__(self, app: str, env: Mapping[str, str]) -> None:
        self.pidfile = tempfile.NamedTemporaryFile(prefix="botdialogs-beat-", suffix=".pid")  # noqa: SIM115
        command = [sys.executable, "-m", "celery", "-A", app, "beat", "--loglevel", "WARNING"]
        # Beat refuses to start while its pid file exists: name a fresh one, absent.
        os.unlink(self.pidfile.name)
        super().__init__([*command, "--pidfile", self.pidfile.name], env)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop beat and forget its pid file."""
        super().stop(timeout)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.close()


@dataclass(frozen=True)
class ChatMessage:
    """One message of a local chat, as the user sees it."""

    message_id: int
    from_bot: bool
    text: str
    caption: str
    buttons: list[list[str]]
    edit_count: int
    deleted: bool
    revision: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChatMessage:
        """Build from the chat API's message JSON."""
        return cls(
            message_id=data["message_id"],
            from_bot=data["from_bot"],
            text=data["text"],
            caption=data["caption"],
            buttons=data["buttons"],
            edit_count=data["edit_count"],
            deleted=data["deleted"],
            revision=data["revision"],
            raw=data,
        )


class LocalTelegramError(RuntimeError):
    """The local Telegram user API refused an action (no such button, unknown bot)."""


def _request(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=DEFAULT_TIMEOUT * 4) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise LocalTelegramError(f"{error.code}: {error.read().decode()}") from None
    return answer["result"]


class LocalTelegram:
    """The user side of local Telegram on a running server (``base_url`` like ``http://h:p``)."""

    def __init__(self, base_url: str, bot: str = "default") -> None:
        self.base_url = base_url.rstrip("/")
        self.bot = bot

    def api(self, path: str) -> str:
        """The URL of a user-API path of this bot."""
        return f"{self.base_url}/localtg/api/bots/{self.bot}/{path}"

    def chat(self, user_id: int, first_name: str = "Ann", **profile: str) -> LocalChatClient:
        """A simulated private chat with user ``user_id``."""
        return LocalChatClient(self, user_id, {"first_name": first_name, **profile})

    def set_rate_limits(self, enabled: bool) -> None:
        """Make local Telegram answer 429 like Telegram's flood control (off by default)."""
        _request(self.api("rate-limits/"), {"enabled": enabled})


class LocalChatClient:
    """One simulated user's chat with the bot: write, press, read."""

    def __init__(self, telegram: LocalTelegram, user_id: int, profile: dict[str, str]) -> None:
        self.telegram = telegram
        self.user_id = user_id
        self.profile = profile

    def _url(self, action: str) -> str:
        return self.telegram.api(f"chats/{self.user_id}/{action}/")

    def send(self, text: str) -> dict[str, Any]:
        """Write ``text`` as the user; returns once the webhook answered (with its status)."""
        return _request(self._url("messages"), {"text": text, **self.profile})

    def press(self, text: str | None = None, *, data: str | None = None) -> dict[str, Any]:
        """Press the newest inline button labelled ``text`` (or with callback ``data``)."""
        return _request(self._url("press"), {"text": text, "data": data})

    def block(self, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot."""
        _request(self._url("block"), {"blocked": blocked})

    def read(self, since: int = 0) -> dict[str, Any]:
        """The raw chat API answer: ``revision``, ``messages`` and ``callback_answers``."""
        return _request(f"{self._url('messages')}?since={since}")

    def messages(self) -> list[ChatMessage]:
        """Every message in the chat, oldest first (deleted ones included, flagged)."""
        return [ChatMessage.from_json(data) for data in self.read()["messages"]]

    def bot_messages(self) -> list[ChatMessage]:
        """What the bot shows now: its messages that are not deleted."""
        return [m for m in self.messages() if m.from_bot and not m.deleted]

    def last(self) -> ChatMessage | None:
        """The bot's newest visible message."""
        shown = self.bot_messages()
        return shown[-1] if shown else None

    def wait_for(
        self, predicate: Callable[[ChatMessage], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> ChatMessage:
        """The first visible bot message matching ``predicate``, polling until ``timeout``."""

        def found() -> ChatMessage | None:
            return next((m for m in self.bot_messages() if predicate(m)), None)

        return wait_until(found, timeout=timeout)

    def wait_for_text(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> ChatMessage:
        """The visible bot message whose text (or caption) is ``text``."""
        return self.wait_for(lambda m: text in (m.text, m.caption), timeout=timeout)
