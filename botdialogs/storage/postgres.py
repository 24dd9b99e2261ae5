"""The PostgreSQL backend of DjangoStorage: two round trips per update on one connection.

Round trip 1 is one query string: ``BEGIN``, the chat's transaction-scoped advisory lock,
the claim (update id, action id, timer id) and a SELECT per row kind of the chat's rows
(:data:`~botdialogs.storage.rows.ROW_TABLES`) and of its chat rows. Round trip 2 is
another: the writes, then ``COMMIT``, which also releases the lock. Each is one simple-query
message, so it is one round trip whatever the driver or a pooler in between does; values
are bound by psycopg on the client (no prepared statements), so PgBouncer in transaction
pooling mode works, and locks never outlive a transaction.

psycopg's async API on connections of our own (a psycopg-pool per event loop,
:class:`botdialogs.storage.connections.LoopPools`), not the ORM: no hop through Django's
single sync thread, no connection per request. Rows written here are committed outside
Django's test transaction (tests use ``transactional_db``).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

import psycopg
from django.utils import timezone
from psycopg.types.json import Jsonb

from botdialogs.models import TelegramChat
from botdialogs.storage.claims import AlreadyProcessed, Claim, ClaimOutcome
from botdialogs.storage.connections import LoopPools, Statement, execute_all
from botdialogs.storage.database import LoadedScope, Transaction, WritePlan
from botdialogs.storage.isolation import advisory_key
from botdialogs.storage.rows import (
    CHAT_KEY_FIELDS,
    CHAT_READ_FIELDS,
    KEY_FIELDS,
    ROW_TABLES,
    SCOPE_FIELDS,
    ChatScope,
    Row,
    RowKey,
    RowKind,
    RowTable,
    scope_rows,
    single_row,
    stack_ref_of,
)

CHAT_TABLE = TelegramChat._meta.db_table
CONTEXT_TABLE = ROW_TABLES[RowKind.CONTEXT].table
STACK_TABLE = ROW_TABLES[RowKind.STACK].table
JSON_COLUMNS = frozenset(
    {"data", "intents", "extra", "start_data", "dialog_data", "widget_data", "access_settings"}
)
SCOPE_WHERE = " AND ".join(f"{name} = %s" for name in SCOPE_FIELDS)
KEY_WHERE = " AND ".join(f"{name} = %s" for name in KEY_FIELDS)
# The reads of round trip 1, built once: each kind's rows of the chat, then its chat rows.
SELECT_SCOPE = tuple(
    f"SELECT * FROM {table.table} WHERE {SCOPE_WHERE}" for table in ROW_TABLES.values()
)
SELECT_CHATS = (
    f"SELECT {', '.join(CHAT_KEY_FIELDS)}, is_blocked, last_seen, {', '.join(CHAT_READ_FIELDS)} "
    f"FROM {CHAT_TABLE} WHERE bot_id = %s AND chat_id = %s"
)
# A context's stack row id, found by the server in the same transaction as the stack's write.
STACK_PK = f"(SELECT id FROM {STACK_TABLE} WHERE {KEY_WHERE} AND stack_id = %s)"


def _adapt(column: str, value: Any) -> Any:
    # JSON null stays SQL NULL for nullable JSON columns, as the ORM stores it.
    if column in JSON_COLUMNS and value is not None:
        return Jsonb(value)
    return value


@cache
def _upsert_sql(
    table: str, unique: tuple[str, ...], columns: tuple[str, ...], keep: tuple[str, ...] = ()
) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` of one row (a context's stack id as a subquery)."""
    values = ", ".join(
        STACK_PK if table == CONTEXT_TABLE and column == "stack_id" else "%s" for column in columns
    )
    update = ", ".join(
        f"{column} = EXCLUDED.{column}"
        for column in columns
        if column not in unique and column not in keep
    )
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT ({', '.join(unique)}) DO UPDATE SET {update}"
    )


@cache
def _delete_sql(table: RowTable) -> str:
    return f"DELETE FROM {table.table} WHERE {KEY_WHERE} AND {table.name_field} = %s"


LINK_SQL = (
    f"UPDATE {CONTEXT_TABLE} SET stack_id = {STACK_PK} "
    f"WHERE {KEY_WHERE} AND intent_id = ANY(%s) AND stack_id IS NULL"
)


def plan_statements(plan: WritePlan) -> list[Statement]:
    """The plan as statements with their parameters, run in order in one transaction."""
    statements: list[Statement] = []
    for kind, table in ROW_TABLES.items():
        for key in plan.deletes.get(kind, []):
            statements.append((_delete_sql(table), list(key[1:])))
        for values in plan.upserts.get(kind, []):
            params: list[Any] = []
            for column, value in values.items():
                if kind is RowKind.CONTEXT and column == "stack_id":
                    params.extend(stack_ref_of(values))  # the STACK_PK subquery's
                else:
                    params.append(_adapt(column, value))
            statements.append((_upsert_sql(table.table, table.unique, tuple(values)), params))
    if plan.link_contexts:
        for stack in plan.upserts.get(RowKind.STACK, []):
            if stack["intents"]:
                stack_key = [stack[name] for name in KEY_FIELDS]
                link = [*stack_key, stack["stack_id"], *stack_key, stack["intents"]]
                statements.append((LINK_SQL, link))
    for chat in plan.chats:
        values = {**chat, "first_seen": plan.now, "last_seen": plan.now}
        sql = _upsert_sql(CHAT_TABLE, CHAT_KEY_FIELDS, tuple(values), keep=("first_seen",))
        statements.append((sql, [_adapt(column, value) for column, value in values.items()]))
    for extra in plan.extra:
        statements.extend((sql, list(params)) for sql, params in extra.statements)
    return statements


class PostgresDatabase:
    """DjangoStorage's queries through psycopg's async API (see the module docstring)."""

    def __init__(
        self,
        data_ttl: timedelta | None,
        using: str = "default",
        max_connections: int = 10,
        synchronous_commit: bool = True,
        prepared_statements: bool = False,
    ) -> None:
        self.data_ttl = data_ttl
        # Each chat being handled holds one connection for its update: this many chats of one
        # process (event loop) are handled at once; more wait for a free connection.
        self.pool = LoopPools(using=using, max_size=max_connections)
        self.begin_sql = ["BEGIN"]
        if not synchronous_commit:
            self.begin_sql.append("SET LOCAL synchronous_commit = off")
        self.prepare = prepared_statements

    async def close(self) -> None:
        """Close this loop's idle connections."""
        await self.pool.close()

    def discard(self) -> None:
        """Forget every loop's connections (settings changed; loops may be gone)."""
        self.pool.discard()

    # -- a unit of work ----------------------------------------------------------------------
    async def begin(self, scope: ChatScope | None, claim: Claim | None) -> Transaction:
        """Round trip 1 (see the module docstring)."""
        statements: list[Statement] = [(sql, []) for sql in self.begin_sql]
        if scope is not None:
            statements.append(("SELECT pg_advisory_xact_lock(%s)", [advisory_key(scope.lock_name)]))
        if claim is not None:
            claim_sql, claim_params = claim.sql(timezone.now())
            statements.append((claim_sql, list(claim_params)))
        if scope is not None:
            statements.extend(_scope_statements(scope))
        connection, results = await self.pool.run_all(statements, prepare=self.prepare)
        transaction = Transaction(scope=scope, claim=claim, handle=connection)
        if scope is not None:
            results.pop(0)  # the lock
        if claim is not None:
            new = bool(results.pop(0))
            claim.outcome = ClaimOutcome.TAKEN if new else ClaimOutcome.DUPLICATE
            if not new:
                await self.rollback(transaction)
                raise AlreadyProcessed(f"{claim.describe()} was processed before")
        if scope is not None:
            *tables, chats = results
            transaction.rows, transaction.chats = scope_rows(
                dict(zip(ROW_TABLES, tables, strict=True)), chats, timezone.now(), self.data_ttl
            )
        return transaction

    async def commit(self, transaction: Transaction, plan: WritePlan | None) -> None:
        """Round trip 2: the plan's statements and COMMIT in one query string."""
        statements = plan_statements(plan) if plan is not None else []
        statements.append(("COMMIT", []))
        connection: psycopg.AsyncConnection[Any] = transaction.handle
        try:
            await execute_all(connection, statements, prepare=self.prepare)
        except BaseException:
            await self.rollback(transaction)
            raise
        transaction.handle = None
        await self.pool.put(connection)

    async def rollback(self, transaction: Transaction) -> None:
        """ROLLBACK and give the connection back; a broken one is closed (which unlocks).

        Once only: a unit that closes after a failed commit (which rolled back) finds the
        connection given back already, and the pool must not get it twice.
        """
        connection: psycopg.AsyncConnection[Any] | None = transaction.handle
        if connection is None:
            return
        transaction.handle = None
        try:
            await connection.rollback()
        except Exception:  # noqa: BLE001 - closing the session is the rollback then
            await self.pool.drop(connection)
            return
        await self.pool.put(connection)

    # -- outside a unit of work --------------------------------------------------------------
    async def load_row(self, key: RowKey) -> Row:
        """One key, in one round trip."""
        table = ROW_TABLES[key.kind]
        where = key.columns()
        if key.kind is RowKind.CONTEXT:
            query = (
                f"SELECT c.*, s.expires_at AS stack_expires_at FROM {table.table} c "
                f"LEFT JOIN {STACK_TABLE} s ON s.id = c.stack_id WHERE "
                + " AND ".join(f"c.{name} = %s" for name in where)
            )
        else:
            condition = " AND ".join(f"{name} = %s" for name in where)
            query = f"SELECT * FROM {table.table} WHERE {condition}"
        connection, cursor = await self.pool.run(query, list(where.values()))
        try:
            values = await cursor.fetchone()
        finally:
            await self.pool.put(connection)
        stack_expires_at = values.get("stack_expires_at") if values is not None else None
        return single_row(key.kind, values, timezone.now(), self.data_ttl, stack_expires_at)

    async def load_scope(self, scope: ChatScope) -> LoadedScope:
        """Round trip 1's reads without BEGIN and lock: one query string, one snapshot."""
        connection, results = await self.pool.run_all(
            _scope_statements(scope), prepare=self.prepare
        )
        await self.pool.put(connection)
        *tables, chats = results
        return scope_rows(
            dict(zip(ROW_TABLES, tables, strict=True)), chats, timezone.now(), self.data_ttl
        )

    async def write(self, plan: WritePlan) -> None:
        """The plan in one implicit transaction (one query string is atomic)."""
        statements = plan_statements(plan)
        if not statements:
            return
        connection, _results = await self.pool.run_all(statements, prepare=self.prepare)
        await self.pool.put(connection)


def _scope_statements(scope: ChatScope) -> list[Statement]:
    """Round trip 1's reads: each kind's rows of the chat, then its chat rows."""
    return [*((sql, list(scope)) for sql in SELECT_SCOPE), (SELECT_CHATS, list(scope[:2]))]
