"""The role a storage engine plays for DjangoStorage, and the write plan both engines follow.

Two engines implement :class:`StorageDatabase`: :class:`.orm.OrmDatabase` (Django's ORM,
any database) and :class:`.postgres.PostgresDatabase` (psycopg's async API on PostgreSQL,
without the ORM's one-thread queue). :class:`WritePlan` turns one update's changed rows into
table operations, so the engines differ only in how they run them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from botdialogs.storage.claims import Claim
from botdialogs.storage.rows import (
    ChatIdent,
    ChatScope,
    Row,
    RowId,
    context_stack_ref,
    context_values,
    fsm_values,
    node_values,
    stack_values,
)

LoadedScope = tuple[dict[RowId, Row], dict[ChatIdent, dict[str, Any]]]


@dataclass
class Transaction:
    """An open unit of work's transaction: what :meth:`StorageDatabase.begin` loaded."""

    scope: ChatScope | None
    claim: Claim | None
    rows: dict[RowId, Row] = field(default_factory=dict)
    chats: dict[ChatIdent, dict[str, Any]] = field(default_factory=dict)
    #: The engine's own handle (a psycopg connection; None for the ORM).
    handle: Any = None


class StorageDatabase(Protocol):
    """What DjangoStorage needs from a database engine."""

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

    async def load_row(self, row_id: RowId) -> Row:
        """One row outside a unit of work (empty when absent or expired)."""
        ...

    async def write(self, plan: WritePlan) -> None:
        """Carry out the plan in one transaction, outside a unit of work."""
        ...

    async def close(self) -> None:
        """Close what this engine opened on the running event loop."""
        ...


@dataclass(frozen=True)
class ExtraWrite:
    """A write of another table that must commit with a unit of work's state, or not at all.

    Added with :meth:`botdialogs.storage.UnitOfWork.add_write` (a timer scheduled in a
    handler, for one). Each engine runs its own half, after the state's writes and before
    COMMIT: the PostgreSQL engine appends ``statements`` (SQL, params) to round trip 2's
    query string, so the round trip count stays two; the ORM engine calls ``orm`` inside
    its atomic block, in Django's thread.
    """

    statements: tuple[tuple[str, tuple[Any, ...]], ...]
    orm: Callable[[], Any]


@dataclass
class WritePlan:
    """One update's changes as table operations (see :meth:`build`)."""

    now: datetime
    fsm_upserts: list[dict[str, Any]] = field(default_factory=list)
    fsm_deletes: list[RowId] = field(default_factory=list)
    stack_upserts: list[dict[str, Any]] = field(default_factory=list)
    stack_deletes: list[RowId] = field(default_factory=list)
    contexts: list[tuple[RowId, Row]] = field(default_factory=list)
    context_deletes: list[RowId] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)
    node_upserts: list[dict[str, Any]] = field(default_factory=list)
    node_deletes: list[RowId] = field(default_factory=list)
    known_stacks: dict[tuple, int] = field(default_factory=dict)
    link_contexts: bool = False
    #: Writes of other tables added to the unit of work (:class:`ExtraWrite`), run last.
    extra: list[ExtraWrite] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        changes: dict[RowId, Row],
        *,
        now: datetime,
        state_ttl: timedelta | None,
        data_ttl: timedelta | None,
        chats: list[dict[str, Any]] | None = None,
        known_stacks: dict[tuple, int] | None = None,
        link_contexts: bool = False,
    ) -> WritePlan:
        """Sort changed rows into upserts and deletes, table by table."""
        plan = cls(
            now=now,
            chats=chats or [],
            known_stacks=dict(known_stacks or {}),
            link_contexts=link_contexts,
        )
        for row_id, row in changes.items():
            kind = row_id[0]
            if kind == "fsm":
                values = fsm_values(row_id, row, now, state_ttl, data_ttl)
                if values:
                    plan.fsm_upserts.append(values)
                else:
                    plan.fsm_deletes.append(row_id)
            elif kind == "node":
                values = node_values(row_id, row, now)
                if values:
                    plan.node_upserts.append(values)
                else:
                    plan.node_deletes.append(row_id)
            elif kind == "stack":
                values = stack_values(row_id, row, now, data_ttl)
                if values:
                    plan.stack_upserts.append(values)
                else:
                    plan.stack_deletes.append(row_id)
            elif row.data:
                plan.contexts.append((row_id, row))
            else:
                plan.context_deletes.append(row_id)
        return plan

    def missing_stacks(self, written: dict[tuple, int]) -> set[tuple]:
        """Stacks of the contexts to write whose row id is not known yet."""
        known = {**self.known_stacks, **written}
        return {
            ref
            for ref in (context_stack_ref(row_id, row) for row_id, row in self.contexts)
            if ref not in known
        }

    def context_upserts(self, stack_pks: dict[tuple, int]) -> list[dict[str, Any]]:
        """Context rows with their stack's row id filled in (None if it has no stack row)."""
        known = {**self.known_stacks, **stack_pks}
        # Never None: contexts holds rows with data (deletes are in context_deletes).
        return cast(
            list[dict[str, Any]],
            [
                context_values(row_id, row, self.now, known.get(context_stack_ref(row_id, row)))
                for row_id, row in self.contexts
            ],
        )

    def context_values(self, row_id: RowId, row: Row) -> dict[str, Any]:
        """A context row's columns, its stack row id left for the engine to find."""
        values = context_values(row_id, row, self.now, None)
        assert values is not None  # deletes are in context_deletes
        return values

    def links(self, written: dict[tuple, int]) -> list[tuple[dict[str, Any], int, list[str]]]:
        """(stack key, stack row id, intents) for attaching contexts written on their own."""
        if not self.link_contexts:
            return []
        result = []
        for values in self.stack_upserts:
            ref = tuple(values[name] for name in (*STACK_REF_FIELDS,))
            if values["intents"] and ref in written:
                result.append((values, written[ref], values["intents"]))
        return result


STACK_REF_FIELDS = (
    "bot_id",
    "chat_id",
    "user_id",
    "thread_id",
    "business_connection_id",
    "stack_id",
)
