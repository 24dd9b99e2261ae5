"""Monitor events: small JSON dicts describing what a dialog did, published once committed.

Every event has ``kind`` (one of :data:`KINDS`), ``bot`` (the bot's name) or ``bot_id``
(its Telegram id, where the name is not at hand: the consumer fills in the other),
``user_id``, ``chat_id``, ``at`` (Unix time) and fields of its kind. Texts are cut to
``MAX_TEXT`` characters and lists to ``MAX_ITEMS`` items, so an event stays small whatever
a user wrote.

Publish only what has committed: callers publish after the unit of work's commit (the
update's, the action's, the timer's). Sync code inside a database transaction gets its
event sent when the transaction commits (``on_commit``), and never for a rollback.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from types import TracebackType
from typing import Any

from django.db import connection, transaction

from botdialogs.monitor import sending
from botdialogs.monitor.presence import watching

logger = logging.getLogger("botdialogs.monitor")

GROUP = sending.GROUP
#: What the monitor shows, by ``kind``.
KINDS = {
    "update": "update received",
    "dialog.started": "dialog started",
    "dialog.switched": "dialog switched",
    "dialog.closed": "dialog closed",
    "state.changed": "FSM state changed",
    "data.changed": "data changed",
    "action": "background action performed",
    "timer": "timer fired",
    "error": "handler error",
}
MAX_TEXT = 200
MAX_ITEMS = 20

# The events an update's own task publishes while it runs (see UpdateEvents).
_held: contextvars.ContextVar[tuple[asyncio.Task[Any], list[dict[str, Any]]] | None] = (
    contextvars.ContextVar("botdialogs_monitor_held", default=None)
)


def publish(
    kind: str, *, bot: str | int, user_id: int | None, chat_id: int | None, **fields: Any
) -> None:
    """Show an event on the live monitor, if anyone watches; from sync or async code.

    ``bot`` is the bot's name, or its Telegram id where only that is known. Never raises
    and never waits: a failure to publish is logged at debug level and forgotten.
    """
    if not watching():
        return
    try:
        event = _event(kind, bot, user_id, chat_id, fields)
        if _hold(event):
            return
        if _in_sync_transaction():
            transaction.on_commit(lambda: sending.submit(event))
        else:
            sending.submit(event)
    except Exception:
        logger.debug("Could not publish a %s monitor event", kind, exc_info=True)


def publish_action(action: Any, kind: str = "action", **fields: Any) -> None:
    """A background action (or, ``kind="timer"``, a timer's action) was performed and
    committed: its kind, target state and id."""
    if not watching():
        return
    try:
        publish(
            kind,
            bot=str(action.get("bot", "")),
            user_id=action.get("user_id"),
            chat_id=action.get("chat_id"),
            action=action.get("action"),
            state=action.get("state") or action.get("node"),
            action_id=action.get("id"),
            **fields,
        )
    except Exception:
        logger.debug("Could not publish an action to the monitor", exc_info=True)


class UpdateEvents:
    """The monitor events of one update, shown in the order a reader expects.

    The unit of work publishes what an update changed when it commits, before the webhook
    code knows the update was handled (not a redelivery). Inside ``with UpdateEvents() as
    events:`` those events are held; :meth:`publish` then shows "update received", what it
    changed, and ``events.error`` (a handler's bug) if set. Never called (a redelivery, a
    rollback): the held events are dropped. Nothing is held while nobody watches.
    """

    __slots__ = ("error", "held", "token")

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.held: list[dict[str, Any]] = []
        self.token: contextvars.Token[Any] | None = None

    def __enter__(self) -> UpdateEvents:
        if watching():
            try:
                task = asyncio.current_task()
            except RuntimeError:
                task = None
            if task is not None:
                self.token = _held.set((task, self.held))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.token is not None:
            _held.reset(self.token)
            self.token = None

    def publish(self, bot: str, update: Any) -> None:
        """The update was handled: show it, what it changed, and its error if any."""
        if not watching():
            return
        publish_update(bot, update)
        for event in self.held:
            sending.submit(event)
        self.held.clear()
        if self.error is not None:
            publish_error(bot, update, self.error)


def _hold(event: dict[str, Any]) -> bool:
    """Keep ``event`` for the update its task is handling, if there is one."""
    held = _held.get()
    if held is None:
        return False
    try:
        if held[0] is not asyncio.current_task():
            return False  # another task (or a thread) that inherited the context
    except RuntimeError:
        return False
    held[1].append(event)
    return True


def publish_update(bot: str, update: Any) -> None:
    """An update was handled (its id committed): what kind, from whom, what it said."""
    if not watching():
        return
    try:
        publish("update", bot=bot, **_describe_update(update))
    except Exception:
        logger.debug("Could not describe an update for the monitor", exc_info=True)


def publish_error(bot: str, update: Any, error: BaseException) -> None:
    """A handler failed on an update: its error, on the update's user and chat."""
    if not watching():
        return
    try:
        who = _describe_update(update)
        publish(
            "error",
            bot=bot,
            user_id=who["user_id"],
            chat_id=who["chat_id"],
            update_id=who["update_id"],
            error=f"{type(error).__name__}: {error}",
        )
    except Exception:
        logger.debug("Could not publish a handler error to the monitor", exc_info=True)


def _describe_update(update: Any) -> dict[str, Any]:
    """kind (message, callback…), user, chat and a short text of an aiogram Update."""
    event_type = getattr(update, "event_type", "unknown")
    event = getattr(update, event_type, None) if event_type != "unknown" else None
    user = getattr(event, "from_user", None)
    chat = getattr(event, "chat", None)
    message = getattr(event, "message", None)
    if chat is None and message is not None:
        chat = getattr(message, "chat", None)
    described: dict[str, Any] = {
        "update_id": getattr(update, "update_id", None),
        "update": "callback" if event_type == "callback_query" else event_type,
        "user_id": getattr(user, "id", None),
        "chat_id": getattr(chat, "id", None),
    }
    if event_type == "callback_query":
        described["data"] = getattr(event, "data", None) or ""
    elif event_type == "message":
        text = getattr(event, "text", None) or getattr(event, "caption", None)
        kind = getattr(event, "content_type", "message")
        described["text"] = text if text is not None else f"<{kind}>"
    return described


def _event(
    kind: str, bot: str | int, user_id: int | None, chat_id: int | None, fields: dict[str, Any]
) -> dict[str, Any]:
    event: dict[str, Any] = {name: _bounded(value) for name, value in fields.items()}
    event.update(kind=kind, user_id=user_id, chat_id=chat_id, at=time.time())
    event["bot" if isinstance(bot, str) else "bot_id"] = bot
    return event


def _bounded(value: Any) -> Any:
    """A JSON value of bounded size: short texts, short lists, scalars; anything else a text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        bounded = [_bounded(item) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            bounded.append(f"… {len(items) - MAX_ITEMS} more")
        return bounded
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _in_sync_transaction() -> bool:
    """Whether the caller is sync code inside a transaction (the event waits for its commit)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return connection.in_atomic_block
    return False
