"""The NodeRouter: runs node steps inside the update's unit of work.

A step reads the user's node row (loaded with the chat in round trip 1), runs the node, and
puts the new row in memory; the unit of work writes it in round trip 2 with the update's
claim. One user's events are serialised by the chat lock, in every process. When the step
raises, the unit of work drops its changes: the user stays where they were.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import CallbackQuery
from aiogram_dialog import DialogManager
from django.utils.translation import gettext, gettext_noop
from pydantic import ValidationError

from botdialogs.background import send
from botdialogs.background.actions import build_action, register_node_router
from botdialogs.engine.bots import get_bot, get_storage
from botdialogs.exceptions import BotDialogsError
from botdialogs.i18n import speaking
from botdialogs.nodes.node import ContextT, EventT, Node, UserIdT
from botdialogs.nodes.registry import NodeRegistry, UnknownNode
from botdialogs.storage import Claim, DjangoStorage, UnitOfWork
from botdialogs.storage.rows import NODE_DATA, NODE_VERSION, Row, RowKey, RowKind, row_key

logger = logging.getLogger("botdialogs.nodes")

AnyNode = Node[Any, Any, Any, Any]
RECOVERY_TEXT = gettext_noop("Sorry, we had to start over.")
_routers: dict[str, NodeRouter[Any, Any, Any]] = {}
_dialog_manager: contextvars.ContextVar[DialogManager | None] = contextvars.ContextVar(
    "botdialogs_nodes_dialog_manager", default=None
)


class StaleSchema(BotDialogsError):
    """Node data saved under another ``schema_version`` of its node class."""


class NodesNotConfigured(BotDialogsError):
    """Node routers need DjangoStorage and its unit of work (botdialogs' default storage)."""


def get_router(name: str) -> NodeRouter[Any, Any, Any]:
    """The NodeRouter created under ``name`` in this process (KeyError if none)."""
    return _routers[name]


def routers() -> dict[str, NodeRouter[Any, Any, Any]]:
    """Every NodeRouter of this process by name (the admin lists their nodes)."""
    return dict(_routers)


def current_dialog_manager() -> DialogManager:
    """The aiogram_dialog manager of the running node step: a node starts dialogs with it."""
    manager = _dialog_manager.get()
    if manager is None:
        raise NodesNotConfigured(
            "No dialog manager in this node step: register NodeRouter.route on an aiogram "
            "router that setup_dialogs covers"
        )
    return manager


class NodeRouter(Generic[ContextT, EventT, UserIdT]):
    """Routes a user's events to their current node; stores where each user is.

    ``registry`` maps keys to node classes; ``start(user_id)`` gives a new user's first
    node (and the node after a recovery); ``user_id_of(event)`` the user of an event;
    ``context`` is passed to every node (or ``context_factory(bot)`` builds it per step).
    ``first_event_to_start``: a new user's first event is entered *and* handled by the start
    node (False: it only enters it). ``name`` tells several routers of one bot apart.

    Use ``router.message()(nodes.route)`` and ``router.callback_query()(nodes.route)``.
    """

    def __init__(
        self,
        registry: NodeRegistry,
        start: Callable[[UserIdT], AnyNode],
        user_id_of: Callable[[EventT], UserIdT],
        context: ContextT | None = None,
        *,
        context_factory: Callable[[Bot], ContextT] | None = None,
        name: str = "nodes",
        first_event_to_start: bool = True,
        recovery_text: str = RECOVERY_TEXT,
    ) -> None:
        self.registry = registry
        self.start = start
        self.user_id_of = user_id_of
        self.context = context
        self.context_factory = context_factory
        self.name = name
        self.first_event_to_start = first_event_to_start
        self.recovery_text = recovery_text
        _routers[name] = self
        register_node_router(name, self._perform_move)

    # -- the aiogram handler ------------------------------------------------------------------
    async def route(
        self,
        event: EventT,
        bot: Bot,
        state: FSMContext,
        dialog_manager: DialogManager | None = None,
    ) -> None:
        """The aiogram handler: one node step for the event's user, in the update's unit."""
        unit = _unit(state.storage)
        token = _dialog_manager.set(dialog_manager)
        try:
            await self.step(unit, state.key, bot, self.user_id_of(event), event)
            if isinstance(event, CallbackQuery):
                # The step is done: stop the button's spinner. A query Telegram no longer
                # knows (too old, answered) must not undo the step.
                with suppress(TelegramBadRequest):
                    await event.answer()
        finally:
            _dialog_manager.reset(token)

    async def feed(
        self,
        bot_name: str,
        user_id: UserIdT,
        chat_id: int,
        event: EventT,
        *,
        claim: Claim | None = None,
        **key: Any,
    ) -> None:
        """Run one step for ``event`` outside a Telegram update (a timer firing, part 8).

        Opens the chat's unit of work itself (joins it when called inside one, then without a
        claim), so the step is serialised with the user's updates and commits with ``claim``.
        """
        bot = get_bot(bot_name)
        storage_key = _key(bot, user_id, chat_id, **key)
        async with _storage().unit_of_work(storage_key, claim) as unit:
            await self.step(unit, storage_key, bot, user_id, event)

    # -- moving users ---------------------------------------------------------------------------
    def user(
        self, user_id: UserIdT, *, chat_id: int | None = None, bot: str = "default"
    ) -> NodeUser:
        """A handle to move ``user_id`` (in their private chat unless ``chat_id``)."""
        return NodeUser(self, bot, user_id, chat_id if chat_id is not None else int(user_id))  # type: ignore[call-overload]

    def start_node(self, user_id: UserIdT) -> AnyNode:
        """The start node for ``user_id``."""
        return self.start(user_id)

    async def move(self, unit: UnitOfWork, key: StorageKey, bot: Bot, node: AnyNode) -> None:
        """Put the user of ``key`` on ``node`` in ``unit``: enter it, then store it."""
        row_id = self._row_id(key)
        current = await unit.get(row_id)
        await node.on_enter(key.user_id, self._context(bot))
        self._save(unit, row_id, current, node)

    async def _perform_move(self, action: dict[str, Any], claim: Claim | None) -> None:
        """A "node" background action (inline, Celery or Channels): move, once, with its claim."""
        bot = get_bot(action["bot"])
        node = self.registry.get(action["node"]).restore(action["data"])
        key = _key(
            bot,
            action["user_id"],
            action["chat_id"],
            thread_id=action["thread_id"],
            business_connection_id=action["business_connection_id"],
        )
        # Not through the Dispatcher: the language middleware's work is done here.
        async with (
            _storage().unit_of_work(key, claim) as unit,
            speaking(bot.id, key.chat_id, key.user_id),
        ):
            await self.move(unit, key, bot, node)

    # -- one step -------------------------------------------------------------------------------
    async def step(
        self, unit: UnitOfWork, key: StorageKey, bot: Bot, user_id: UserIdT, event: EventT
    ) -> None:
        """One node step for ``event`` in ``unit`` (the chat of ``key`` is locked and loaded).

        Reads the user's node (a new user enters the start node; an unknown key or data that
        no longer validates sends them back to it, with a message and a log line), runs
        ``on_event``, enters the next node and puts it in the unit: written at its commit,
        dropped when anything here raised.
        """
        row_id = self._row_id(key)
        row = await unit.get(row_id)
        ctx = self._context(bot)
        if row.state is None:
            node = self.start(user_id)
            await node.on_enter(user_id, ctx)
            if not self.first_event_to_start:
                self._save(unit, row_id, row, node)
                return
        else:
            try:
                node = self._restore(row)
            except (UnknownNode, StaleSchema, ValidationError) as error:
                await self._recover(unit, row_id, row, bot, key, user_id, error)
                return
        following = await node.on_event(user_id, event, ctx)
        if following is not node:
            await following.on_enter(user_id, ctx)
        self._save(unit, row_id, row, following)

    def _restore(self, row: Row) -> AnyNode:
        assert row.state is not None
        node_class = self.registry.get(row.state)
        version = row.data.get(NODE_VERSION) or 1
        if version != node_class.schema_version:
            # Saved under another model: even data that happens to validate may mean
            # something else now (a unit changed, a field reused).
            raise StaleSchema(
                f"saved with schema version {version}, {node_class.__qualname__} is at "
                f"{node_class.schema_version}"
            )
        return node_class.restore(row.data.get(NODE_DATA) or {})

    async def _recover(
        self,
        unit: UnitOfWork,
        row_id: RowKey,
        row: Row,
        bot: Bot,
        key: StorageKey,
        user_id: UserIdT,
        error: Exception,
    ) -> None:
        # Like a stale dialog state: tell the user, log it, and start over (never raise
        # forever on every later event).
        reason = "unknown node" if isinstance(error, UnknownNode) else "invalid data"
        if isinstance(error, StaleSchema):
            reason = "stale schema"
        logger.warning(
            "Node state of user %s in chat %s (router %r, node %r): %s, back to the start node: %s",
            key.user_id,
            key.chat_id,
            self.name,
            row.state,
            reason,
            error,
        )
        await bot.send_message(key.chat_id, gettext(self.recovery_text))
        start = self.start(user_id)
        await start.on_enter(user_id, self._context(bot))
        self._save(unit, row_id, row, start)

    def _save(self, unit: UnitOfWork, row_id: RowKey, current: Row, node: AnyNode) -> None:
        data = {NODE_DATA: node.dump(), NODE_VERSION: type(node).schema_version}
        unit.put(row_id, Row(state=self.registry.key_of(node), data=data, pk=current.pk))

    def _row_id(self, key: StorageKey) -> RowKey:
        return row_key(RowKind.NODE, key, name=self.name)

    def _context(self, bot: Bot) -> Any:
        return self.context_factory(bot) if self.context_factory is not None else self.context


@dataclass
class NodeUser:
    """One user of a NodeRouter, to move from code (``nodes.user(user_id).to(node)``)."""

    router: NodeRouter[Any, Any, Any]
    bot: str
    user_id: Any
    chat_id: int

    def action(self, node: AnyNode) -> dict[str, Any]:
        """The background action that moves the user to ``node``."""
        return build_action(
            "node",
            self.bot,
            int(self.user_id),
            self.chat_id,
            check_state=False,
            router=self.router.name,
            node=self.router.registry.key_of(node),
            data=node.dump(),
        )

    def to(self, node: AnyNode) -> str:
        """From sync code: move the user after the current transaction commits.

        Delivered like every background action (``BOTDIALOGS['BACKGROUND']``: inline, Celery
        or Channels) and performed once in the user's chat lock. Returns the action id.
        """
        return send(self.action(node))

    async def ato(self, node: AnyNode) -> None:
        """From async code (a dialog handing the user back, a consumer): move now.

        Inside the user's own update this joins its unit of work (the move commits with
        the update); elsewhere it opens one.
        """
        bot = get_bot(self.bot)
        key = _key(bot, self.user_id, self.chat_id)
        async with _storage().unit_of_work(key) as unit:
            await self.router.move(unit, key, bot, node)


def _key(
    bot: Bot,
    user_id: Any,
    chat_id: int,
    *,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
) -> StorageKey:
    return StorageKey(
        bot_id=bot.id,
        chat_id=chat_id,
        user_id=int(user_id),
        thread_id=thread_id,
        business_connection_id=business_connection_id,
    )


def _storage() -> DjangoStorage:
    return _unit_storage(get_storage())


def _unit_storage(storage: Any) -> DjangoStorage:
    if not isinstance(storage, DjangoStorage):
        raise NodesNotConfigured(
            "A NodeRouter needs botdialogs' DjangoStorage (its unit of work), "
            f"not {type(storage).__name__}"
        )
    return storage


def _unit(storage: Any) -> UnitOfWork:
    unit = _unit_storage(storage).current_unit()
    if unit is None:
        raise NodesNotConfigured(
            "A node step runs inside an update's unit of work: use botdialogs' dispatcher"
        )
    return unit
