"""The role a storage backend plays for DjangoStorage, and the write plan both follow.

Two backends implement :class:`StorageDatabase`: :class:`.orm.OrmDatabase` (Django's ORM,
any database) and :class:`.postgres.PostgresDatabase` (psycopg's async API on PostgreSQL,
without the ORM's one-thread queue). :class:`WritePlan` turns one update's changed rows into
table operations, kind by kind, so the backends differ only in how they run them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from botdialogs.storage.claims import Claim
from botdialogs.storage.rows import (
    ROW_TABLES,
    ChatIdent,
    ChatScope,
    Row,
    RowKey,
    RowKind,
    StackRef,
    Writing,
    stack_ref_of,
)

LoadedScope = tuple[dict[RowKey, Row], dict[ChatIdent, dict[str, Any]]]


@dataclass
class Transaction:
    """An open unit of work's transaction: what :meth:`StorageDatabase.begin` loaded."""

    scope: ChatScope | None
    claim: Claim | None
    rows: dict[RowKey, Row] = field(default_factory=dict)
    chats: dict[ChatIdent, dict[str, Any]] = field(default_factory=dict)
    #: The backend's own handle (a psycopg connection; None for the ORM).
    handle: Any = None


class StorageDatabase(Protocol):
    """What DjangoStorage needs from a storage backend."""

    async def begin(self, scope: ChatScope | None, claim: Claim | None) -> Transaction:
        """Round trip 1: lock the chat, take the claim, load the chat's live rows.

        Raises AlreadyProcessed (holding nothing) when the claim was committed before.
        """
        ...

    async def commit(self, transaction: Transaction, plan: WritePlan | None) -> None:
        """Round trip 2: carry out the plan, commit (with the claim) and unlock."""
        ...

    async def rollback(self, transaction: Transaction) -> None:
        """Drop the transaction and unlock; never raises."""
        ...

    async def load_row(self, key: RowKey) -> Row:
        """One row outside a unit of work (empty when absent or expired)."""
        ...

    async def load_scope(self, scope: ChatScope) -> LoadedScope:
        """Every live row of one chat outside a unit of work, in one round trip, no lock."""
        ...

    async def write(self, plan: WritePlan) -> None:
        """Carry out the plan in one transaction, outside a unit of work."""
        ...

    async def close(self) -> None:
        """Close what this backend opened on the running event loop."""
        ...


@dataclass(frozen=True)
class ExtraWrite:
    """A write of another table that must commit with a unit of work's state, or not at all.

    Added with :meth:`botdialogs.storage.UnitOfWork.add_write` (a timer scheduled in a
    handler, for one). Each backend runs its own half, after the state's writes and before
    COMMIT: the PostgreSQL backend appends ``statements`` (SQL, params) to round trip 2's
    query string, so the round trip count stays two; the ORM backend calls ``orm`` inside
    its atomic block, in Django's thread.
    """

    statements: tuple[tuple[str, tuple[Any, ...]], ...]
    orm: Callable[[], Any]


@dataclass
class WritePlan:
    """One update's changes as table operations, kind by kind (see :meth:`build`).

    Backends run, for each kind of :data:`~botdialogs.storage.rows.ROW_TABLES` in order, its
    deletes then its upserts; then :meth:`links`, the chats and the extra writes.
    """

    now: datetime
    upserts: dict[RowKind, list[dict[str, Any]]] = field(default_factory=dict)
    deletes: dict[RowKind, list[RowKey]] = field(default_factory=dict)
    chats: list[dict[str, Any]] = field(default_factory=list)
    #: Stack row ids the unit of work read, for the contexts it writes.
    known_stacks: dict[StackRef, int] = field(default_factory=dict)
    link_contexts: bool = False
    #: Writes of other tables added to the unit of work (:class:`ExtraWrite`), run last.
    extra: list[ExtraWrite] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        changes: dict[RowKey, Row],
        *,
        now: datetime,
        state_ttl: timedelta | None,
        data_ttl: timedelta | None,
        chats: list[dict[str, Any]] | None = None,
        known_stacks: dict[StackRef, int] | None = None,
        link_contexts: bool = False,
    ) -> WritePlan:
        """Sort changed rows into upserts and deletes, kind by kind."""
        plan = cls(
            now=now,
            chats=chats or [],
            known_stacks=dict(known_stacks or {}),
            link_contexts=link_contexts,
        )
        writing = Writing(now=now, state_ttl=state_ttl, data_ttl=data_ttl)
        for key, row in changes.items():
            values = ROW_TABLES[key.kind].write(key, row, writing)
            if values is None:
                plan.deletes.setdefault(key.kind, []).append(key)
            else:
                plan.upserts.setdefault(key.kind, []).append(values)
        return plan

    def missing_stacks(self, written: dict[StackRef, int]) -> set[StackRef]:
        """Stacks of the contexts to write whose row id is not known yet."""
        known = {**self.known_stacks, **written}
        refs = (stack_ref_of(values) for values in self.upserts.get(RowKind.CONTEXT, []))
        return {ref for ref in refs if ref not in known}

    def context_upserts(self, stack_pks: dict[StackRef, int]) -> list[dict[str, Any]]:
        """Context rows with their stack's row id filled in (None if it has no stack row)."""
        known = {**self.known_stacks, **stack_pks}
        return [
            {**values, "stack_id": known.get(stack_ref_of(values))}
            for values in self.upserts.get(RowKind.CONTEXT, [])
        ]

    def links(self, written: dict[StackRef, int]) -> list[tuple[dict[str, Any], int, list[str]]]:
        """(stack key, stack row id, intents) for attaching contexts written on their own."""
        if not self.link_contexts:
            return []
        result = []
        for values in self.upserts.get(RowKind.STACK, []):
            ref = stack_ref_of(values)
            if values["intents"] and ref in written:
                result.append((values, written[ref], values["intents"]))
        return result
