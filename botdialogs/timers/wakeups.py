"""How firers learn of new timers without asking the database: a cached next due time.

Each firing process keeps :class:`NextDue`, the earliest moment a pending timer may be
claimed, read after each firing run. While that moment is more than a tick away the firer
asks the database nothing. Every write that can bring it closer announces its due time:

- **PostgreSQL**: ``pg_notify`` in the writing transaction (:func:`notify_statement`,
  :func:`announce`), so the server delivers it only when that transaction commits, to every
  process listening. Each firing process listens on a connection of its own, in a thread
  (:class:`Listener`); after that connection is lost, the cache counts as unknown (read on
  the next tick) until it is back.
- **Every database**: the writing process is told after the commit (``on_commit``), which is
  the whole story on SQLite's one process. Other processes writing the SQLite file are found
  by ``PRAGMA data_version`` (a counter in the file's header that moves when any other
  connection commits), asked once a tick on a connection of this module's own.

A cache older than :data:`SAFETY_REREAD` seconds is read again, in case a wake-up was lost
some way not foreseen (a write by hand in ``psql``).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from datetime import datetime
from typing import Any

from django.db import connections, transaction

logger = logging.getLogger("botdialogs.timers")

#: The PostgreSQL notification channel (a payload: the due time as Unix seconds).
CHANNEL = "botdialogs_timers"
#: Seconds a cached next due time is trusted before it is read again.
SAFETY_REREAD = 300.0
#: Seconds the listener blocks between checks that it should stop (no database traffic).
LISTEN_SLICE = 1.0
#: Seconds between tries to reconnect a lost listening connection.
RECONNECT_PAUSE = 1.0
#: Seconds :func:`watching` waits for the first LISTEN before answering.
LISTEN_START_TIMEOUT = 5.0


def notify_statement(due_at: datetime) -> tuple[str, tuple[Any, ...]]:
    """SQL that wakes PostgreSQL listeners when its transaction commits."""
    return "SELECT pg_notify(%s, %s)", (CHANNEL, repr(due_at.timestamp()))


def announce(due_at: datetime, using: str = "default") -> None:
    """Tell firers of a timer due at ``due_at``, once the current transaction commits.

    Call it inside the transaction that writes the timer (or just after an autocommit
    write): on PostgreSQL the notification is part of the transaction.
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*notify_statement(due_at))
    moment = due_at.timestamp()
    transaction.on_commit(lambda: next_due.heard(moment), using=using)


class NextDue:
    """The earliest claimable moment of a pending timer as this process last learned it.

    ``math.inf``: nothing pending. Unknown (after start, an outage, or :data:`SAFETY_REREAD`)
    means "ask the database". A wake-up heard while a read runs is kept over the read's
    answer: the read may have started before that timer committed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._due: float | None = None
        self._read_at = 0.0
        self._heard_during_read: float | None = None
        self._reads = 0
        self._version = 0

    def heard(self, due: float) -> None:
        """A timer due at ``due`` (Unix seconds) was committed."""
        with self._lock:
            if self._due is not None:
                self._due = min(self._due, due)
            if self._reads:
                self._heard_during_read = min(self._heard_during_read or math.inf, due)
            self._version += 1
            self._changed.notify_all()

    def forget(self) -> None:
        """Count the cache as unknown: the next tick asks the database (wakes no one)."""
        with self._lock:
            self._due = None

    def begin_read(self) -> None:
        """A read of the database's next due time starts (pair with :meth:`end_read`)."""
        with self._lock:
            if not self._reads:
                self._heard_during_read = None
            self._reads += 1

    def end_read(self, due: float | None) -> None:
        """The read found ``due`` (None: nothing pending); failed reads pass nothing."""
        with self._lock:
            self._reads -= 1
            self._due = min(math.inf if due is None else due, self._heard_during_read or math.inf)
            self._read_at = time.monotonic()

    def abort_read(self) -> None:
        """The read failed: the cache stays as it was."""
        with self._lock:
            self._reads -= 1

    def due(self) -> float | None:
        """The cached moment (Unix seconds, ``math.inf`` for none), None when unknown/stale."""
        with self._lock:
            if self._due is not None and time.monotonic() - self._read_at > SAFETY_REREAD:
                self._due = None
            return self._due

    def quiet_for(self, seconds: float) -> bool:
        """True when the cache says no timer can be claimed within ``seconds`` from now."""
        due = self.due()
        return due is not None and due > time.time() + seconds

    def version(self) -> int:
        """A number that changes with every wake-up (:meth:`heard`)."""
        with self._lock:
            return self._version

    def wait_for_change(self, version: int, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until :meth:`version` moves past ``version``."""
        with self._lock:
            return self._changed.wait_for(lambda: self._version != version, timeout)


#: This process's cache (every firer of the process shares it).
next_due = NextDue()


def _listen_params(using: str) -> dict[str, Any]:
    from botdialogs.conf import get_settings
    from botdialogs.storage.connections import connection_params

    listen = get_settings().timers_listen
    if isinstance(listen, str):
        return {"conninfo": listen}
    return connection_params(using)


class Listener(threading.Thread):
    """LISTEN for timer notifications on a PostgreSQL connection of its own, until closed.

    The thread blocks on the socket (no queries while idle) and reconnects after an outage;
    every (re)connect forgets the cache, since wake-ups may have been missed meanwhile.
    """

    def __init__(self, cache: NextDue, params: dict[str, Any]) -> None:
        super().__init__(name="botdialogs-timer-listener", daemon=True)
        self.cache = cache
        self.params = params
        self.listening = threading.Event()
        self.closing = threading.Event()

    def run(self) -> None:
        """Listen, reconnecting, until :meth:`close`."""
        import psycopg

        while not self.closing.is_set():
            try:
                with psycopg.connect(**self.params, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.cache.forget()
                    self.listening.set()
                    while not self.closing.is_set():
                        for note in connection.notifies(timeout=LISTEN_SLICE):
                            self._hear(note.payload)
            except psycopg.Error as error:
                if self.listening.is_set():
                    logger.warning("Timer wake-ups lost (%s); reconnecting", error)
                self.listening.clear()
                self.cache.forget()
                self.closing.wait(RECONNECT_PAUSE)
        self.listening.clear()

    def _hear(self, payload: str) -> None:
        try:
            self.cache.heard(float(payload))
        except ValueError:
            self.cache.forget()  # not ours to read: ask the database

    def close(self) -> None:
        """Stop listening (within :data:`LISTEN_SLICE`) and wait for the thread."""
        self.closing.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join(LISTEN_SLICE + 5.0)


class FileVersion:
    """``PRAGMA data_version`` of a SQLite file on a connection that never writes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._seen: int | None = None

    def moved(self) -> bool:
        """True when another connection committed since the last call (or on the first)."""
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(self.path, check_same_thread=False)
            (version,) = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            self.close()
            return True
        moved, self._seen = version != self._seen, version
        return moved

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
        self._connection, self._seen = None, None


class Watch:
    """What keeps this process's :data:`next_due` honest: a listener or a file version."""

    def __init__(self, using: str = "default") -> None:
        self.pid = os.getpid()
        self.listener: Listener | None = None
        self.file: FileVersion | None = None
        # Blind: no way to hear of other processes' timers (asks every tick, as before).
        self.blind = False
        connection = connections[using]
        if connection.vendor == "postgresql":
            if get_listen() is False:
                self.blind = True
            else:
                self.listener = Listener(next_due, _listen_params(using))
                self.listener.start()
                if not self.listener.listening.wait(LISTEN_START_TIMEOUT):
                    logger.warning("Timer wake-ups not listening yet: asking every tick")
        elif connection.vendor == "sqlite":
            # An in-memory database has no other process: the on_commit wake-up is enough.
            name = str(connection.settings_dict["NAME"])
            if name and ":memory:" not in name and "mode=memory" not in name:
                self.file = FileVersion(name)
        else:
            self.blind = True

    def quiet_for(self, seconds: float) -> bool:
        """True when no timer can be claimed within ``seconds``: skip this tick's queries."""
        if self.blind or (self.listener is not None and not self.listener.listening.is_set()):
            next_due.forget()
        if self.file is not None and self.file.moved():
            next_due.forget()
        return next_due.quiet_for(seconds)

    def close(self) -> None:
        """Stop listening and close this watch's connections."""
        if self.listener is not None:
            self.listener.close()
        if self.file is not None:
            self.file.close()


def get_listen() -> bool | str:
    """``BOTDIALOGS['TIMERS_LISTEN']``."""
    from botdialogs.conf import get_settings

    return get_settings().timers_listen


_watch: Watch | None = None
_watch_lock = threading.Lock()


def watching() -> Watch:
    """This process's :class:`Watch`, started on first use (again in a forked child)."""
    global _watch
    with _watch_lock:
        if _watch is None or _watch.pid != os.getpid():
            next_due.forget()
            _watch = Watch()
        return _watch


def stop_watching() -> None:
    """Close this process's watch (the firer stopped); the next :func:`watching` starts one."""
    global _watch
    with _watch_lock:
        watch, _watch = _watch, None
    if watch is not None and watch.pid == os.getpid():
        watch.close()
    next_due.forget()
