"""The update's snapshot of a chat: DjangoStorage in a plain aiogram Dispatcher, no isolation.

``Dispatcher(storage=DjangoStorage())`` without ``events_isolation`` gives the storage no
unit of work: aiogram and aiogram_dialog call it key by key, and a call is not told which
update it serves. One call starts every update that has a chat, though: aiogram's FSM
middleware reads the default destiny's state before any handler runs. That read
(:meth:`~botdialogs.storage.DjangoStorage.get_state`) loads all of the chat's rows in one
round trip into a :class:`ChatSnapshot` of the running task; the update's other reads of
that chat (aiogram_dialog's stack and context) come from it. Writes are not deferred: each
is committed before its call returns, as without a snapshot, and a write that changes
nothing is not sent.

Correct under concurrency in the process: a write of a chat through any DjangoStorage of
the process (another task's update, a unit of work, a background action) makes every other
task's snapshot of that chat stale, and a stale snapshot reads from the database again. A
snapshot lives until its task's next update (the next default-destiny state read); without
an event isolation nothing locks a chat across processes, with RedisStorage no more than
here.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref

from botdialogs.storage.rows import ChatScope, Row, RowKey

#: (database alias, chat lock name): a chat as every DjangoStorage of the process names it.
ChatName = tuple[str, str]

_current: contextvars.ContextVar[ChatSnapshot | None] = contextvars.ContextVar(
    "botdialogs_chat_snapshot", default=None
)
# The live snapshots of each chat, for writes to mark stale; a chat's entry goes with its
# last snapshot.
_live: dict[ChatName, weakref.WeakSet[ChatSnapshot]] = {}


def _forget(name: ChatName) -> None:
    snapshots = _live.get(name)
    if snapshots is not None and not snapshots:
        del _live[name]


class ChatSnapshot:
    """One chat's rows as one update of one task read them (see the module docstring)."""

    def __init__(self, owner: object, using: str, scope: ChatScope) -> None:
        self.owner = owner
        self.name: ChatName = (using, scope.lock_name)
        self.scope = scope
        self.task = asyncio.current_task()
        self.rows: dict[RowKey, Row] = {}
        self.loaded = False
        #: Another task (or storage) wrote the chat since this snapshot started loading.
        self.overtaken = False
        _live.setdefault(self.name, weakref.WeakSet()).add(self)
        weakref.finalize(self, _forget, self.name)

    @property
    def fresh(self) -> bool:
        """Loaded and not written by anybody else since: reads may come from :attr:`rows`."""
        return self.loaded and not self.overtaken

    def fill(self, rows: dict[RowKey, Row]) -> None:
        """The snapshot's rows arrived (usable unless a write landed meanwhile)."""
        self.rows = rows
        self.loaded = True

    def get(self, row: RowKey) -> Row | None:
        """The row as loaded (or as this task wrote it), or None when the snapshot cannot say."""
        if not self.fresh or row.scope != self.scope:
            return None
        return self.rows.get(row) or Row()  # in the chat and not loaded means not stored


def start(owner: object, using: str, scope: ChatScope) -> ChatSnapshot:
    """A new snapshot of ``scope`` for the running task (it replaces the task's last one).

    Registered before it is loaded: a write that lands while it loads makes it stale.
    """
    snapshot = ChatSnapshot(owner, using, scope)
    _current.set(snapshot)
    return snapshot


def current(owner: object, scope: ChatScope) -> ChatSnapshot | None:
    """The running task's usable snapshot of ``scope``, started by ``owner``, if any."""
    snapshot = _current.get()
    # A task started inside an update copies the context but is not part of the update.
    if (
        snapshot is None
        or snapshot.owner is not owner
        or snapshot.task is not asyncio.current_task()
        or snapshot.scope != scope
        or not snapshot.fresh
    ):
        return None
    return snapshot


def written(using: str, scope: ChatScope, by: ChatSnapshot | None = None) -> None:
    """A write of ``scope`` was sent or committed: every other snapshot of it is stale."""
    for snapshot in _live.get((using, scope.lock_name), ()):
        if snapshot is not by:
            snapshot.overtaken = True
