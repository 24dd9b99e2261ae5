"""Repairs of stored dialog state, safe against a running bot.

Each write runs in a transaction that first takes the chat lock the bot takes
(:mod:`botdialogs.storage.isolation`; on PostgreSQL a transaction-level advisory lock), so a repair
never interleaves with an update of the same chat. The admin's actions call these.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import StorageKey
from django.contrib import messages
from django.db import connections, router, transaction
from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext, gettext_noop

from botdialogs.engine.bots import bot_name_for_id
from botdialogs.i18n import speaking
from botdialogs.models import DialogContext, DialogStack
from botdialogs.storage.isolation import advisory_key, chat_lock_name
from botdialogs.storage.rows import KEY_FIELDS

ChatScope = tuple[int, int, int, str]
logger = logging.getLogger("botdialogs.admin")


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


# -- repairs for support: the database and the user's chat together -------------------------
#: What the user reads after support reset their dialogs (their old buttons stop working).
RESET_NOTICE = gettext_noop("Support reset this conversation. Send /start to begin again.")


@dataclass
class RepairOutcome:
    """What one repair did to one stack, as a support person reads it."""

    text: str
    level: int = messages.SUCCESS


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 stack``, ``2 stacks``, ``0 dialogs``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def dialog_name(state: str) -> str:
    """A dialog's name is its state group: ``FoodOrder`` for ``FoodOrder:cart``."""
    return state.partition(":")[0] or "(none)"


def states_below(stack: DialogStack) -> list[str]:
    """The states of the stack's open dialogs, bottom to top (one query)."""
    key = {name: getattr(stack, name) for name in KEY_FIELDS}
    by_intent = dict(
        DialogContext.objects.filter(**key, intent_id__in=stack.intents).values_list(
            "intent_id", "state"
        )
    )
    return [by_intent.get(intent, "") for intent in stack.intents]


def known_to_bot(bot_name: str | None, states: Iterable[str]) -> bool:
    """Whether the bot is configured here and its dialogs define every state."""
    from botdialogs.background.actions import dialog_states

    if bot_name is None:
        return False
    try:
        defined = dialog_states(bot_name)
    except Exception:  # a bot whose router fails to load: repair the rows only
        logger.exception("Could not load the dialogs of bot %r", bot_name)
        return False
    return all(state in defined for state in states)


def close_top_action_id(stack_pk: int, intent_id: str) -> str:
    """The id of the action that closes dialog ``intent_id`` on a stack.

    Derived from the dialog's intent id: a confirmation posted twice (a double click, a
    reload) sends the same action, and its claim lets it take effect once.
    """
    return f"admin-close-top-{stack_pk}-{intent_id}"[:64]


def close_top_for_support(
    stack_pk: int, who: str, expected_top: str | None = None
) -> RepairOutcome:
    """Close the top dialog of a stack and show the user the dialog underneath.

    Goes through :mod:`botdialogs.background` (a ``done`` action), like any site action:
    aiogram_dialog closes the dialog, shows the one below (or removes the keyboard when none
    is left), and the action's row commits with the state (exactly once, listed in the
    admin). ``expected_top`` is the intent id the support person confirmed closing: when
    another dialog is on top by now, nothing is closed. A stack whose bot or states this
    process does not know is repaired in the database only.
    """
    from botdialogs import background
    from botdialogs.models import BackgroundAction

    stack = DialogStack.objects.filter(pk=stack_pk).first()
    if stack is None:
        return RepairOutcome(f"Nothing to close for {who}: the stack is gone.", messages.WARNING)
    if not stack.intents:
        return RepairOutcome(f"Nothing to close for {who}: no dialog is open.", messages.WARNING)
    if expected_top and stack.intents[-1] != expected_top:
        done = BackgroundAction.objects.filter(
            action_id=close_top_action_id(stack.pk, expected_top),
            status=BackgroundAction.Status.DONE,
        ).exists()
        why = "it was closed already" if done else "it is no longer the top dialog"
        return RepairOutcome(
            f"Nothing closed for {who}: {why} (now showing {stack.state or 'no dialog'}).",
            messages.WARNING,
        )
    states = states_below(stack)
    closing = dialog_name(states[-1] or stack.state)
    bot_name = bot_name_for_id(stack.bot_id)
    if not known_to_bot(bot_name, [s for s in states[-2:] if s]):
        close_top_dialog(stack.pk)
        stack.refresh_from_db()
        return RepairOutcome(
            f"Closed dialog {closing} for {who} in the database only (this site's bot code "
            f"does not know its states); now at {stack.state or 'no dialog'}. Their chat "
            "was not updated: their next message or press goes to the dialog below.",
            messages.WARNING,
        )
    assert bot_name is not None
    action = background.build_action(
        "done",
        bot_name,
        stack.user_id,
        stack.chat_id,
        stack_id=stack.stack_id,
        thread_id=stack.thread_id or None,
        business_connection_id=stack.business_connection_id or None,
        result=None,
        show_mode=None,
    )
    action_id = background.send({**action, "id": close_top_action_id(stack.pk, stack.intents[-1])})
    record = BackgroundAction.objects.filter(action_id=action_id).only("status", "error").first()
    if record is not None and record.status == BackgroundAction.Status.DONE:
        stack = DialogStack.objects.filter(pk=stack_pk).first()
        if stack is None or not stack.state:
            return RepairOutcome(
                f"Closed dialog {closing} for {who}; no dialog is open now "
                "(their last message's keyboard was removed)."
            )
        return RepairOutcome(f"Closed dialog {closing} for {who}; now showing {stack.state}")
    if record is not None and record.status == BackgroundAction.Status.REJECTED:
        return RepairOutcome(
            f"Could not close dialog {closing} for {who}: {record.error}", messages.ERROR
        )
    below = states[-2] if len(states) > 1 else "no dialog"
    return RepairOutcome(
        f"Closing dialog {closing} for {who}: queued as background action {action_id}; "
        f"then {below} is shown."
    )


def reset_for_support(
    stacks: list[DialogStack], who: str, orphans: Q | None = None
) -> RepairOutcome:
    """Delete stacks (and their contexts), then bring the user's chat in line.

    The old inline keyboard would answer with "dialog not found": it is removed from the
    last dialog message of each stack, and the user reads :data:`RESET_NOTICE` once.
    ``orphans`` also deletes contexts of the chat that no stack names.
    """
    if not stacks and orphans is None:
        return RepairOutcome(f"Nothing to reset for {who}: no dialog stack.", messages.WARNING)
    keyboards = [
        (s.bot_id, s.chat_id, s.thread_id, s.last_message_id)
        for s in stacks
        if s.last_message_id and not s.last_reply_keyboard
    ]
    reply_keyboard = any(s.last_reply_keyboard for s in stacks)
    scopes = {chat_scope_of(s) for s in stacks}
    with chat_write(DialogStack, scopes):
        where = Q(stack__in=[s.pk for s in stacks])
        contexts = DialogContext.objects.filter(where | orphans if orphans else where).delete()[0]
        deleted = DialogStack.objects.filter(pk__in=[s.pk for s in stacks]).delete()[0]
    did = f"deleted {plural(deleted, 'stack')} with {plural(contexts, 'dialog')}"
    first = stacks[0] if stacks else None
    bot_name = bot_name_for_id(first.bot_id) if first else None
    if first is None or bot_name is None:
        return RepairOutcome(f"Reset dialogs for {who}: {did}. Their chat was not updated.")
    from botdialogs.engine.sync import call_async

    try:
        call_async(
            tidy_chat_after_reset,
            bot_name,
            first.chat_id,
            first.thread_id or None,
            [message for (*_, message) in keyboards],
            reply_keyboard,
        )
    except (TelegramAPIError, OSError) as error:
        return RepairOutcome(
            f"Reset dialogs for {who}: {did}. Could not update their chat: {error}",
            messages.WARNING,
        )
    removed = "removed the buttons of their last message, " if keyboards else ""
    return RepairOutcome(f'Reset dialogs for {who}: {did}; {removed}sent them "{RESET_NOTICE}"')


async def tidy_chat_after_reset(
    bot_name: str,
    chat_id: int,
    thread_id: int | None,
    message_ids: list[int],
    reply_keyboard: bool,
) -> None:
    """Remove the inline keyboards of ``message_ids`` and send the reset notice."""
    from aiogram.exceptions import TelegramBadRequest
    from aiogram.types import ReplyKeyboardRemove

    from botdialogs.engine.bots import get_bot

    bot = get_bot(bot_name)
    for message_id in message_ids:
        try:
            await bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=None
            )
        except TelegramBadRequest as error:
            # Deleted by the user, too old to edit, or the keyboard is already gone.
            logger.info("Keyboard of message %s in chat %s stays: %s", message_id, chat_id, error)
    async with speaking(bot.id, chat_id, chat_id):  # a private chat: the user is the chat
        notice = gettext(RESET_NOTICE)
    await bot.send_message(
        chat_id,
        notice,
        message_thread_id=thread_id,
        reply_markup=ReplyKeyboardRemove() if reply_keyboard else None,
    )
