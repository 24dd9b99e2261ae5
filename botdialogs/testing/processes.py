"""Processes for end-to-end tests: an ASGI server, Celery worker and beat, each in a process
group of its own with its output kept for the failure message.

:class:`AsgiServer` serves a site on a free port on the (test) database :func:`server_env`
names; :class:`ListeningProcess` is ready once its port accepts connections.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self
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


def process_env(
    base: Mapping[str, str],
    settings_module: str,
    *,
    drop: Iterable[str] = (),
    **extra: str,
) -> dict[str, str]:
    """The environment of a server or worker a test or benchmark starts: ``base`` without
    the ``drop`` variables (a broker, a bot token it must not use), on ``settings_module``,
    its output unbuffered, then ``extra`` (which may give a broker back)."""
    dropped = set(drop)
    env = {key: value for key, value in base.items() if key not in dropped}
    env.update({"DJANGO_SETTINGS_MODULE": settings_module, "PYTHONUNBUFFERED": "1"})
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

    def __enter__(self) -> Self:
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
    :meth:`wait_ready` returns once the worker answers a ping on its broker.
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
        self.name = name

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Return once the worker consumes: it answers a ping on ``env``'s broker.

        A started worker takes seconds to load the site before it takes a task (longer on a
        loaded machine: over 60 s beside a CI run at load 20): waiting here keeps that out
        of what a test's own waits measure. ``timeout`` only guards against a hang.
        Needs the worker's ``name`` (``node@%h``) and a broker in ``REDIS_URL`` or
        ``CELERY_BROKER_URL``; a worker that exits first raises with what it printed.
        """
        from celery import Celery

        broker = self.env.get("CELERY_BROKER_URL") or self.env.get("REDIS_URL")
        if not broker or self.name is None:
            raise ValueError("wait_ready needs a worker name and a broker in its environment")
        node = self.name.replace("%h", socket.gethostname())
        # Not the current app: the test process's own Celery app stays what tasks use.
        app = Celery(broker=broker, set_as_current=False)

        def answered() -> bool:
            if not self.running:
                raise RuntimeError(f"The Celery worker exited:\n{self.output()}")
            # The ping's own timeout is the poll interval: a broadcast waits for replies.
            return bool(app.control.ping(destination=[node], timeout=0.5))

        try:
            wait_until(answered, timeout=timeout, interval=0)
        finally:
            app.close()


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


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as dead; Linux only)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
