"""The Django ORM engine of DjangoStorage: any database Django supports (SQLite by default).

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
from django.db.models import Model, Q
from django.utils import timezone

from botdialogs.models import DialogContext, DialogStack, FsmRecord, NodeState, TelegramChat
from botdialogs.storage.claims import AlreadyProcessed, Claim
from botdialogs.storage.database import STACK_REF_FIELDS, LoadedScope, Transaction, WritePlan
from botdialogs.storage.rows import (
    CHAT_FIELDS,
    CHAT_READ_FIELDS,
    KEY_FIELDS,
    ChatScope,
    Row,
    RowId,
    key_values,
    scope_rows,
    single_row,
)

MODELS: dict[str, type[Model]] = {
    "fsm": FsmRecord,
    "stack": DialogStack,
    "context": DialogContext,
    "node": NodeState,
}


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

    async def load_row(self, row_id: RowId) -> Row:
        """One key, outside a unit of work."""
        return await sync_to_async(self.load_row_sync)(row_id)

    async def write(self, plan: WritePlan) -> None:
        """The plan in one transaction, outside a unit of work."""
        await sync_to_async(self.write_sync)(plan)

    async def close(self) -> None:
        """Nothing: the connection belongs to Django."""

    def begin_sync(self, scope: ChatScope | None, claim: Claim | None) -> Transaction:
        """:meth:`begin` in Django's thread."""
        if claim is not None:
            claim.fresh = not claim.taken()
            if not claim.fresh:
                raise AlreadyProcessed(f"{claim.describe()} was processed before")
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
                raise AlreadyProcessed(f"{claim.describe()} was committed meanwhile")
            if plan is not None:
                self.write_sync(plan)

    # -- reads ------------------------------------------------------------------------------
    def load_scope_sync(self, scope: ChatScope) -> LoadedScope:
        """Every row stored for one chat: five queries on Django's connection."""
        bot_id, chat_id, thread_id, bcid = scope
        where = Q(bot_id=bot_id, chat_id=chat_id, thread_id=thread_id, business_connection_id=bcid)
        chats = TelegramChat.objects.filter(bot_id=bot_id, chat_id=chat_id).values(
            "bot_id", "chat_id", "user_id", "is_blocked", "last_seen", *CHAT_READ_FIELDS
        )
        return scope_rows(
            FsmRecord.objects.filter(where).values(),
            DialogStack.objects.filter(where).values(),
            DialogContext.objects.filter(where).values(),
            chats,
            timezone.now(),
            self.data_ttl,
            NodeState.objects.filter(where).values(),
        )

    def load_row_sync(self, row_id: RowId) -> Row:
        """One key, outside a unit of work."""
        kind = row_id[0]
        values = MODELS[kind]._default_manager.filter(**key_values(row_id)).values().first()
        stack_expires_at = None
        if kind == "context" and values is not None and values["stack_id"] is not None:
            stack = DialogStack.objects.filter(pk=values["stack_id"]).values("expires_at").first()
            if stack is None:
                return Row()  # a context lives as long as its stack
            stack_expires_at = stack["expires_at"]
        return single_row(kind, values, timezone.now(), self.data_ttl, stack_expires_at)

    # -- writes -----------------------------------------------------------------------------
    def write_sync(self, plan: WritePlan) -> None:
        """Carry out the plan in one transaction."""
        with db_transaction.atomic():
            self._delete("fsm", plan.fsm_deletes)
            self._upsert(FsmRecord, plan.fsm_upserts, "destiny")
            self._delete("stack", plan.stack_deletes)
            written = self._upsert(DialogStack, plan.stack_upserts, "stack_id")
            missing = plan.missing_stacks(written)
            if missing:
                written.update(self._stack_pks(missing))
            self._delete("context", plan.context_deletes)
            self._upsert(DialogContext, plan.context_upserts(written), "intent_id")
            for stack, pk, intents in plan.links(written):
                DialogContext.objects.filter(
                    **{name: stack[name] for name in KEY_FIELDS},
                    intent_id__in=intents,
                    stack__isnull=True,
                ).update(stack_id=pk)
            self._delete("node", plan.node_deletes)
            self._upsert(NodeState, plan.node_upserts, "router")
            if plan.chats:
                TelegramChat.objects.bulk_create(
                    [TelegramChat(**chat) for chat in plan.chats],
                    update_conflicts=True,
                    unique_fields=["bot_id", "chat_id", "user_id"],
                    update_fields=[*CHAT_FIELDS, "is_blocked", "last_seen"],
                )
            for extra in plan.extra:
                extra.orm()

    @staticmethod
    def _delete(kind: str, row_ids: list[RowId]) -> None:
        if not row_ids:
            return
        where = Q()
        for row_id in row_ids:
            where |= Q(**key_values(row_id))
        MODELS[kind]._default_manager.filter(where).delete()

    @staticmethod
    def _upsert(model: type[Model], rows: list[dict[str, Any]], name: str) -> dict[tuple, int]:
        """Insert or update ``rows``; returns stack keys -> row ids for DialogStack."""
        if not rows:
            return {}
        unique = [*KEY_FIELDS, name]
        update = [field for field in rows[0] if field not in unique]
        created = model._default_manager.bulk_create(
            [model(**row) for row in rows],
            update_conflicts=True,
            unique_fields=unique,
            # Field names, not column attnames: DialogContext's "stack_id" is the FK "stack".
            update_fields=[model._meta.get_field(field).name for field in update],
        )
        return {
            tuple(getattr(obj, field) for field in STACK_REF_FIELDS): obj.pk
            for obj in created
            if model is DialogStack and obj.pk is not None
        }

    @staticmethod
    def _stack_pks(refs: set[tuple]) -> dict[tuple, int]:
        where = Q()
        for ref in refs:
            where |= Q(**dict(zip(STACK_REF_FIELDS, ref, strict=True)))
        return {
            tuple(values[field] for field in STACK_REF_FIELDS): values["id"]
            for values in DialogStack.objects.filter(where).values("id", *STACK_REF_FIELDS)
        }
