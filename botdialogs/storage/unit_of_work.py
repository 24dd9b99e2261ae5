"""The unit of work: one update (or background action, timer, node step) of one chat.

Opening it takes the chat's lock, the work's claim (:mod:`.claims`) and every row stored for
the chat, in one round trip to the database. The update's handlers then read and write rows
in memory. Closing it writes what changed and commits, with the claim, in a second round
trip; the lock ends with the transaction. So the stored state is as before the update or as
after it, never half, and the claim commits with it:

- the block raised a passing failure (database, network:
  :func:`~botdialogs.exceptions.is_transient`): everything is rolled back and the error
  propagates, for a 5xx or a task retry;
- the block raised anything else (a handler's bug): its state changes are dropped, the claim
  is committed (the work is done, badly; a retry would fail the same way), and the error
  propagates to be logged;
- opening, committing or closing the unit itself failed, with whatever exception (a
  database error, or a bug of ours or of the driver or pool: a ValueError from a pool given
  a connection twice): that is never a handler's bug. Everything is rolled back and
  :class:`~botdialogs.exceptions.StorageUnavailable` propagates (a 5xx, a task retry). If
  the COMMIT did reach the server before the failure, the retry finds the claim committed
  and is acknowledged without doing the work again.

In every case but a commit the claim's outcome becomes
:attr:`~botdialogs.storage.ClaimOutcome.NOT_COMMITTED`, so its
:meth:`~botdialogs.storage.Claim.confirm` refuses to acknowledge the work even when the
error was swallowed on its way up (a site's catch-all error handler).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, Protocol

from django.utils import timezone

from botdialogs.exceptions import StorageUnavailable, is_transient
from botdialogs.monitor import watching
from botdialogs.storage.changes import publish_changes
from botdialogs.storage.claims import AlreadyProcessed, Claim, ClaimOutcome
from botdialogs.storage.database import ExtraWrite, StorageDatabase, Transaction, WritePlan
from botdialogs.storage.rows import (
    ChatIdent,
    ChatScope,
    Row,
    RowKey,
    RowKind,
    chat_changed,
    chat_ident,
    stack_ref,
)


def copy_rows(rows: dict[RowKey, Row]) -> dict[RowKey, Row]:
    """A deep copy of rows (faster than ``copy.deepcopy``: the data is JSON)."""
    return {key: row.copy() for key, row in rows.items()}


class UnitOfWorkStorage(Protocol):
    """What a unit of work needs from its storage (DjangoStorage is one)."""

    database: StorageDatabase
    state_ttl: timedelta | None
    data_ttl: timedelta | None
    seen_refresh: timedelta


logger = logging.getLogger("botdialogs.storage")


class UnitOfWork:
    """One chat's rows for the length of one piece of work (see the module docstring)."""

    def __init__(self, storage: UnitOfWorkStorage, scope: ChatScope | None, claim: Claim | None):
        self.storage = storage
        self.scope = scope
        self.claim = claim
        self.task = asyncio.current_task()
        self.rows: dict[RowKey, Row] = {}
        self.original: dict[RowKey, Row] = {}
        self.seen: dict[ChatIdent, dict[str, Any]] = {}
        self.known_chats: dict[ChatIdent, dict[str, Any]] = {}
        self.transaction: Transaction | None = None
        #: Set when the work raised: its state changes are not written.
        self.failed = False
        #: Other tables' writes that commit with the state (:meth:`add_write`).
        self.writes: list[ExtraWrite] = []

    # -- the two round trips --------------------------------------------------------------
    async def open(self) -> None:
        """Round trip 1: lock the chat, take the claim, load the chat's rows.

        Raises AlreadyProcessed when the claim was committed before (nothing is held then).
        """
        try:
            self.transaction = await self.storage.database.begin(self.scope, self.claim)
        except AlreadyProcessed:
            raise
        except BaseException as error:
            self._not_committed()
            if not isinstance(error, Exception):
                raise  # cancelled: nothing was taken, the caller's own retry applies
            self._log_failure("Opening the unit of work for", error)
            raise StorageUnavailable(f"Could not open the unit of work: {error!r}") from error
        self.rows, self.known_chats = self.transaction.rows, self.transaction.chats
        self.original = copy_rows(self.rows)

    async def close(self, error: BaseException | None) -> None:
        """Round trip 2: write and commit (see the module docstring for ``error``)."""
        transaction = self.transaction
        assert transaction is not None
        if error is not None and (not isinstance(error, Exception) or is_transient(error)):
            self._not_committed()
            await self._rollback(transaction, error)
            return
        if error is not None:
            self.failed = True
        try:
            # The plan is built here too: a row that cannot be written is a failed commit.
            plan = None if self.failed else self.plan()
            await self.storage.database.commit(transaction, plan)
        except AlreadyProcessed:
            raise
        except BaseException as commit_error:
            self._not_committed()
            await self._rollback(transaction, commit_error)
            if not isinstance(commit_error, Exception):
                raise
            self._log_failure("Commit of", commit_error)
            failure = StorageUnavailable(f"Commit failed: {commit_error!r}")
            # The handler's own error, if any, stays the cause for the log's traceback.
            raise failure from (error if error is not None else commit_error)
        if plan is not None and watching():  # the live monitor, after the commit
            publish_changes(self.original, self.rows)

    def _not_committed(self) -> None:
        if self.claim is not None and self.claim.outcome is not ClaimOutcome.DUPLICATE:
            self.claim.outcome = ClaimOutcome.NOT_COMMITTED

    async def _rollback(self, transaction: Transaction, cause: BaseException) -> None:
        """Roll back; a backend that fails to (its promise is not to raise) is logged, and
        ``cause`` stays the error that propagates: nothing was committed either way."""
        try:
            await self.storage.database.rollback(transaction)
        except Exception:
            logger.exception("Rollback of %s after %r failed", self._what(), cause)

    def _log_failure(self, doing: str, error: BaseException) -> None:
        # A passing failure is the caller's to report (a retry follows); anything else is a
        # bug below the handlers and needs its traceback, though the work is retried too.
        if is_transient(error):
            logger.warning("%s %s failed: %r", doing, self._what(), error)
        else:
            logger.error("%s %s failed", doing, self._what(), exc_info=error)

    def _what(self) -> str:
        return self.claim.describe() if self.claim else "the update"

    # -- what handlers see ------------------------------------------------------------------
    async def get(self, row: RowKey) -> Row:
        """The row as this work sees it."""
        found = self.rows.get(row)
        if found is None:
            # In the chat and not loaded means not stored; another chat's row is read as is.
            in_chat = row.scope == self.scope
            found = Row() if in_chat else await self.storage.database.load_row(row)
            self.rows[row] = found
            self.original[row] = found.copy()
        return found

    def put(self, row: RowKey, value: Row) -> None:
        """Replace a row (read with :meth:`get` first, so the original is known)."""
        self.rows[row] = value

    def discard_changes(self) -> None:
        """Forget the state changes so far (a handler raised; a recovery handler may follow)."""
        self.rows = copy_rows(self.original)
        self.writes.clear()

    def add_write(self, write: ExtraWrite) -> None:
        """Commit ``write`` with this work's state, in round trip 2, or drop it with the state.

        The extension point for tables beside the dialog state (dialog timers use it): the
        write is not run when the work raised, is rolled back with it, and adds no round trip.
        """
        self.writes.append(write)

    def note_seen(self, values: dict[str, Any]) -> None:
        """Remember the chat/user of this update; written with it if it changed."""
        self.seen[chat_ident(values)] = values

    def plan(self) -> WritePlan | None:
        """What this work changed, as a write plan (None when nothing changed)."""
        storage = self.storage
        ttl = storage.data_ttl
        changes = {
            row: value
            for row, value in self.rows.items()
            # With a TTL a stack is rewritten on every update: that renews its expiry.
            if value != self.original.get(row) or (ttl and row.kind is RowKind.STACK and value.data)
        }
        now = timezone.now()
        refresh_before = now - storage.seen_refresh
        chats = [
            {"is_blocked": False, **values}
            for ident, values in self.seen.items()
            if chat_changed(self.known_chats.get(ident), values, refresh_before)
        ]
        if not changes and not chats and not self.writes:
            return None
        plan = WritePlan.build(
            changes,
            now=now,
            state_ttl=storage.state_ttl,
            data_ttl=ttl,
            chats=chats,
            known_stacks={
                stack_ref(row): value.pk
                for row, value in self.original.items()
                if row.kind is RowKind.STACK and value.pk is not None
            },
        )
        plan.extra = list(self.writes)
        return plan
