"""Repairs of stored dialog state, safe against a running bot.

Each write runs in a transaction that first takes the chat lock the bot takes
(:mod:`botdialogs.storage.isolation`; on PostgreSQL a transaction-level advisory lock), so a repair
never interleaves with an update of the same chat. The admin's actions call these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from aiogram.fsm.storage.base import StorageKey
from django.db import connections, router, transaction
from django.db.models import Model, Q, QuerySet

from botdialogs.models import DialogContext, DialogStack, TelegramChat
from botdialogs.storage.isolation import advisory_key, chat_lock_name
from botdialogs.storage.rows import KEY_FIELDS

ChatScope = tuple[int, int, int, str]


# -- chat locks ------------------------------------------------------------------------------
def chat_scope_of(row: Any) -> ChatScope:
    """The chat a row belongs to (TelegramChat rows have no topic: the chat's main lock)."""
    thread = getattr(row, "thread_id", 0)
    return (row.bot_id, row.chat_id, thread, getattr(row, "business_connection_id", ""))


def chat_scopes_of(queryset: QuerySet) -> set[ChatScope]:
    names = {field.name for field in queryset.model._meta.concrete_fields}
    fields = [name for name in KEY_FIELDS if name in names]
    return {chat_scope_of(row) for row in queryset.select_related(None).only(*fields)}


@contextmanager
def chat_write(model: type[Model], scopes: Iterable[ChatScope]) -> Iterator[None]:
    """A transaction holding the bot's chat lock of every scope (on PostgreSQL).

    The bot holds the same lock for a whole update (load, handle, write), so an admin write
    waits for a running update and the next update sees the admin's change. Locks are taken
    in one order, so two admin writes over the same chats cannot deadlock. On other
    databases the transaction alone serialises writes (SQLite allows one writer).
    """
    using = router.db_for_write(model)
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            keys = sorted({advisory_key(chat_lock_name(storage_key_of(s))) for s in scopes})
            with connection.cursor() as cursor:
                for key in keys:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        yield


def storage_key_of(scope: ChatScope) -> StorageKey:
    bot, chat, thread, business_connection = scope
    return StorageKey(
        bot_id=bot,
        chat_id=chat,
        user_id=chat,
        thread_id=thread or None,
        business_connection_id=business_connection or None,
    )


# -- repairs ---------------------------------------------------------------------------------
def reset_stacks(stacks: QuerySet[DialogStack], chunk: int = 500) -> tuple[int, int]:
    """Delete stacks and their contexts, chunk by chunk; returns (stacks, contexts) deleted."""
    pks = list(stacks.order_by().values_list("pk", flat=True))
    deleted_stacks = deleted_contexts = 0
    for start in range(0, len(pks), chunk):
        batch = DialogStack.objects.filter(pk__in=pks[start : start + chunk])
        with chat_write(DialogStack, chat_scopes_of(batch)):
            _, by_model = batch.delete()
        deleted_stacks += by_model.get(DialogStack._meta.label, 0)
        deleted_contexts += by_model.get(DialogContext._meta.label, 0)
    return deleted_stacks, deleted_contexts


def reset_chat(chat: TelegramChat) -> tuple[int, int]:
    """Delete every stack and context the chat's bot has for the chat (every user, topic)."""
    where = Q(bot_id=chat.bot_id, chat_id=chat.chat_id)
    scopes = {
        (chat.bot_id, chat.chat_id, thread, business_connection)
        for model in (DialogStack, DialogContext)
        for thread, business_connection in model.objects.filter(where)
        .values_list("thread_id", "business_connection_id")
        .distinct()
    }
    with chat_write(DialogStack, scopes):
        contexts = DialogContext.objects.filter(where).delete()[0]
        stacks = DialogStack.objects.filter(where).delete()[0]
    return stacks, contexts


def close_top_dialog(stack_pk: int) -> bool:
    """Pop the top intent of a stack, delete its context, and show the new top's state.

    Returns False when the stack is gone or empty. Like ``DialogManager.done()`` without
    the message: the user's next update goes to the dialog below.
    """
    stack = DialogStack.objects.filter(pk=stack_pk).only(*KEY_FIELDS).first()
    if stack is None:
        return False
    with chat_write(DialogStack, [chat_scope_of(stack)]):
        stack = DialogStack.objects.select_for_update().filter(pk=stack_pk).first()
        if stack is None or not stack.intents:
            return False
        intents = list(stack.intents)
        top = intents.pop()
        key = {name: getattr(stack, name) for name in KEY_FIELDS}
        DialogContext.objects.filter(**key, intent_id=top).delete()
        below = DialogContext.objects.filter(**key, intent_id=intents[-1]) if intents else None
        stack.intents = intents
        stack.depth = len(intents)
        stack.state = (below.values_list("state", flat=True).first() or "") if below else ""
        stack.save(update_fields=["intents", "depth", "state", "updated_at"])
    return True
