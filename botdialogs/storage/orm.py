"""The Django ORM backend of DjangoStorage: any database Django supports (SQLite by default).

Queries run in Django's thread through ``sync_to_async``: one hop to read a chat (and check
the claim), one hop to write an update with its claim in one transaction, each on Django's
own connection (and so inside a test's transaction). The chat lock is the storage's
in-process lock: on SQLite one process serves the bot.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction as db_transaction
from django.db.models import Q
from django.utils import timezone

from botdialogs.models import DialogContext, DialogStack, TelegramChat
from botdialogs.storage.claims import AlreadyProcessed, Claim, ClaimOutcome
from botdialogs.storage.database import LoadedScope, Transaction, WritePlan
from botdialogs.storage.rows import (
    CHAT_FIELDS,
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
    StackRef,
    scope_rows,
    single_row,
    stack_ref_of,
)

#: A stack as a context names it: the key columns and the stack id (:data:`StackRef`).
STACK_REF_FIELDS = (*KEY_FIELDS, "stack_id")


class OrmDatabase:
    """DjangoStorage's queries through the Django ORM."""

    def __init__(self, data_ttl: timedelta | None) -> None:
        self.data_ttl = data_ttl

    async def begin(self, scope: ChatScope | None, claim: Claim | None) -> Transaction:
        """Check the claim and read the chat, in one hop to Django's thread."""
        return await sync_to_async(self.begin_sync)(scope, claim)

    async def commit(self, transaction: Transaction, plan: WritePlan | None) -> None:
        """Record the claim and carry out the plan in one transaction."""
        await sync_to_async(self.commit_sync)(transaction, plan)

    async def rollback(self, transaction: Transaction) -> None:
        """Nothing was written before the commit: nothing to undo."""

    async def load_row(self, key: RowKey) -> Row:
        """One key, outside a unit of work."""
        return await sync_to_async(self.load_row_sync)(key)

    async def load_scope(self, scope: ChatScope) -> LoadedScope:
        """Every row of one chat, outside a unit of work, in one hop to Django's thread."""
        return await sync_to_async(self.load_scope_sync)(scope)

    async def write(self, plan: WritePlan) -> None:
        """The plan in one transaction, outside a unit of work."""
        await sync_to_async(self.write_sync)(plan)

    async def close(self) -> None:
        """Nothing: the connection belongs to Django."""

    def begin_sync(self, scope: ChatScope | None, claim: Claim | None) -> Transaction:
        """:meth:`begin` in Django's thread."""
        if claim is not None:
            if claim.taken():
                claim.outcome = ClaimOutcome.DUPLICATE
                raise AlreadyProcessed(f"{claim.describe()} was processed before")
            claim.outcome = ClaimOutcome.TAKEN
        transaction = Transaction(scope=scope, claim=claim)
        if scope is not None:
            transaction.rows, transaction.chats = self.load_scope_sync(scope)
        return transaction

    def commit_sync(self, transaction: Transaction, plan: WritePlan | None) -> None:
        """:meth:`commit` in Django's thread."""
        claim = transaction.claim
        with db_transaction.atomic():
            if claim is not None and not claim.record(timezone.now()):
                # Only without the chat lock (two processes on SQLite) can this happen.
                claim.outcome = ClaimOutcome.DUPLICATE
                raise AlreadyProcessed(f"{claim.describe()} was committed meanwhile")
            if plan is not None:
                self.write_sync(plan)

    # -- reads ------------------------------------------------------------------------------
    def load_scope_sync(self, scope: ChatScope) -> LoadedScope:
        """Every row stored for one chat: a query per row kind and one for the chat rows."""
        where = Q(**dict(zip(SCOPE_FIELDS, scope, strict=True)))
        chats = TelegramChat.objects.filter(bot_id=scope.bot_id, chat_id=scope.chat_id).values(
            *CHAT_KEY_FIELDS, "is_blocked", "last_seen", *CHAT_READ_FIELDS
        )
        tables = {
            kind: table.model._default_manager.filter(where).values()
            for kind, table in ROW_TABLES.items()
        }
        return scope_rows(tables, chats, timezone.now(), self.data_ttl)

    def load_row_sync(self, key: RowKey) -> Row:
        """One key, outside a unit of work."""
        model = ROW_TABLES[key.kind].model
        values = model._default_manager.filter(**key.columns()).values().first()
        stack_expires_at = None
        if key.kind is RowKind.CONTEXT and values is not None and values["stack_id"] is not None:
            stack = DialogStack.objects.filter(pk=values["stack_id"]).values("expires_at").first()
            if stack is None:
                return Row()  # a context lives as long as its stack
            stack_expires_at = stack["expires_at"]
        return single_row(key.kind, values, timezone.now(), self.data_ttl, stack_expires_at)

    # -- writes -----------------------------------------------------------------------------
    def write_sync(self, plan: WritePlan) -> None:
        """Carry out the plan in one transaction, kind by kind."""
        with db_transaction.atomic():
            written: dict[StackRef, int] = {}
            for kind, table in ROW_TABLES.items():
                self._delete(table, plan.deletes.get(kind, []))
                if kind is RowKind.CONTEXT:
                    missing = plan.missing_stacks(written)
                    if missing:
                        written.update(self._stack_pks(missing))
                    self._upsert(table, plan.context_upserts(written))
                else:
                    pks = self._upsert(table, plan.upserts.get(kind, []))
                    if kind is RowKind.STACK:
                        written.update(pks)
            for stack, pk, intents in plan.links(written):
                DialogContext.objects.filter(
                    **{name: stack[name] for name in KEY_FIELDS},
                    intent_id__in=intents,
                    stack__isnull=True,
                ).update(stack_id=pk)
            if plan.chats:
                TelegramChat.objects.bulk_create(
                    [TelegramChat(**chat) for chat in plan.chats],
                    update_conflicts=True,
                    unique_fields=list(CHAT_KEY_FIELDS),
                    update_fields=[*CHAT_FIELDS, "is_blocked", "last_seen"],
                )
            for extra in plan.extra:
                extra.orm()

    @staticmethod
    def _delete(table: RowTable, keys: list[RowKey]) -> None:
        if not keys:
            return
        where = Q()
        for key in keys:
            where |= Q(**key.columns())
        table.model._default_manager.filter(where).delete()

    @staticmethod
    def _upsert(table: RowTable, rows: list[dict[str, Any]]) -> dict[StackRef, int]:
        """Insert or update ``rows``; returns each row's stack reference -> its row id."""
        if not rows:
            return {}
        model = table.model
        update = [field for field in rows[0] if field not in table.unique]
        created = model._default_manager.bulk_create(
            [model(**row) for row in rows],
            update_conflicts=True,
            unique_fields=list(table.unique),
            # Field names, not column attnames: DialogContext's "stack_id" is the FK "stack".
            update_fields=[model._meta.get_field(field).name for field in update],
        )
        if table.kind is not RowKind.STACK:
            return {}
        return {
            stack_ref_of({field: getattr(obj, field) for field in STACK_REF_FIELDS}): obj.pk
            for obj in created
            if obj.pk is not None
        }

    @staticmethod
    def _stack_pks(refs: set[StackRef]) -> dict[StackRef, int]:
        where = Q()
        for ref in refs:
            where |= Q(**dict(zip(STACK_REF_FIELDS, ref, strict=True)))
        return {
            stack_ref_of(values): values["id"]
            for values in DialogStack.objects.filter(where).values("id", *STACK_REF_FIELDS)
        }
