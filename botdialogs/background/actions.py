"""Background actions as plain JSON dicts: built and checked where they are sent, performed
where they are received (a Celery worker, a Channels worker, or this process).

An action names its state as ``"Group:state"``; the name is resolved against the bot's
dialogs when the action is performed, so a worker running newer code than the sender still
finds it, and a state removed since fails with :class:`BadBackgroundAction` (logged, never
retried) instead of a crash loop.

Shape (``v`` is the format version)::

    {"v": 1, "id": "<hex>", "action": "start", "bot": "default", "user_id": 1, "chat_id": 1,
     "stack_id": None, "thread_id": None, "business_connection_id": None, "load": False,
     "state": "MainMenu:menu", "data": {...}, "mode": "NORMAL", "show_mode": "auto"}
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Dispatcher
from aiogram.fsm.state import State
from aiogram_dialog import ShowMode, StartMode
from aiogram_dialog.setup import collect_dialogs

from botdialogs.conf import get_settings
from botdialogs.exceptions import BadBackgroundAction, UnknownBot
from botdialogs.storage.jsonvalues import NotJson, json_copy

logger = logging.getLogger("botdialogs.background")

VERSION = 1
#: Parameters each action takes besides the target (required ones first).
PARAMETERS: dict[str, tuple[str, ...]] = {
    "start": ("state", "data", "mode", "show_mode"),
    "switch_to": ("state", "show_mode"),
    "update": ("data", "show_mode"),
    "done": ("result", "show_mode"),
    # botdialogs.nodes: move a user to a node (performed by the router registered by name).
    "node": ("router", "node", "data"),
}
TARGET_FIELDS = ("bot", "user_id", "chat_id", "stack_id", "thread_id", "business_connection_id")
#: NodeRouters by name, each with the coroutine that moves a user (botdialogs.nodes
#: registers them; background never imports nodes, which sits above it).
NodeMover = Callable[[dict[str, Any]], Awaitable[None]]
_node_movers: dict[str, NodeMover] = {}
_states_cache: weakref.WeakKeyDictionary[Dispatcher, dict[str, State]] = weakref.WeakKeyDictionary()


def state_name(state: State | str) -> str:
    """``"Group:state"`` for a State or a name; the syntax is checked, not the existence."""
    name = state.state if isinstance(state, State) else state
    if not isinstance(name, str) or name.count(":") < 1 or not all(name.split(":", 1)):
        raise BadBackgroundAction(f"State {state!r} is not a State nor a 'Group:state' name")
    return name


def dialog_states(bot_name: str) -> dict[str, State]:
    """Every state of the bot's dialogs by name (built once per Dispatcher)."""
    from botdialogs.engine.bots import get_dispatcher

    dispatcher = get_dispatcher(bot_name)
    states = _states_cache.get(dispatcher)
    if states is None:
        states = {
            state.state: state
            for dialog in collect_dialogs(dispatcher)
            for state in dialog.states_group().__all_states__
            if state.state is not None
        }
        _states_cache[dispatcher] = states
    return states


def resolve_state(bot_name: str, name: str) -> State:
    """The State named ``name`` among the bot's dialogs; BadBackgroundAction if it is gone."""
    try:
        return dialog_states(bot_name)[name]
    except KeyError:
        raise BadBackgroundAction(
            f"Bot {bot_name!r} has no dialog with state {name!r} (renamed or removed?)"
        ) from None


def _enum_value(enum: type[StartMode] | type[ShowMode], value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, enum):
        return value.value
    if isinstance(value, str):
        for member in enum:
            if value.lower() in (member.value.lower(), member.name.lower()):
                return member.value
    choices = ", ".join(m.name.lower() for m in enum)
    raise BadBackgroundAction(f"{field}={value!r} is not one of {choices}")


def _json(value: Any, field: str) -> Any:
    # NaN, Infinity and NUL are refused here, in the caller, not by PostgreSQL in a worker.
    try:
        return json_copy(value)
    except NotJson as error:
        raise BadBackgroundAction(f"{field} must be JSON data: {error}") from error


def _int(value: Any, field: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadBackgroundAction(f"{field} must be an int, not {value!r}")
    return value


def build_action(
    action: str,
    bot: str,
    user_id: int,
    chat_id: int,
    *,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
    load: bool = False,
    check_state: bool = True,
    **parameters: Any,
) -> dict[str, Any]:
    """A new, validated action dict with a fresh id.

    ``check_state`` also looks the state up in this process's dialogs, so a typo fails in
    the caller rather than in a worker.
    """
    raw: dict[str, Any] = {
        "v": VERSION,
        "id": uuid.uuid4().hex,
        "action": action,
        "bot": bot,
        "user_id": user_id,
        "chat_id": chat_id,
        "stack_id": stack_id,
        "thread_id": thread_id,
        "business_connection_id": business_connection_id,
        "load": load,
    }
    for key, value in parameters.items():
        if key == "state" and value is not None:
            value = state_name(value)
        raw[key] = value
    checked = validate_action(raw)
    if check_state and "state" in checked:
        resolve_state(checked["bot"], checked["state"])
    return checked


def validate_action(raw: Any) -> dict[str, Any]:
    """A normalised copy of ``raw``; raises BadBackgroundAction saying what is wrong."""
    if not isinstance(raw, dict):
        raise BadBackgroundAction(f"An action is a dict, not {type(raw).__name__}")
    if raw.get("v", VERSION) != VERSION:
        raise BadBackgroundAction(f"Unknown action format version {raw.get('v')!r}")
    kind = raw.get("action")
    if kind not in PARAMETERS:
        raise BadBackgroundAction(f"action={kind!r} is not one of {', '.join(PARAMETERS)}")
    allowed = {"v", "id", "action", "load", *TARGET_FIELDS, *PARAMETERS[kind]}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise BadBackgroundAction(f"{kind} does not take {', '.join(unknown)}")
    bot = raw.get("bot")
    if not isinstance(bot, str):
        # A list here used to escape as a TypeError (unhashable) from the settings lookup.
        raise BadBackgroundAction(f"No bot named {bot!r} in BOTDIALOGS['BOTS']")
    try:
        get_settings().bot(bot)
    except UnknownBot as error:
        raise BadBackgroundAction(str(error)) from error
    action_id = raw.get("id") or uuid.uuid4().hex
    if not isinstance(action_id, str) or len(action_id) > 64:
        raise BadBackgroundAction("id must be a string of at most 64 characters")
    stack_id = raw.get("stack_id")
    bcid = raw.get("business_connection_id")
    for field, value in (("stack_id", stack_id), ("business_connection_id", bcid)):
        if value is not None and not isinstance(value, str):
            raise BadBackgroundAction(f"{field} must be a string or None")
    action: dict[str, Any] = {
        "v": VERSION,
        "id": action_id,
        "action": kind,
        "bot": bot,
        "user_id": _int(raw.get("user_id"), "user_id"),
        "chat_id": _int(raw.get("chat_id"), "chat_id"),
        "stack_id": stack_id,
        "thread_id": _int(raw.get("thread_id"), "thread_id", optional=True),
        "business_connection_id": bcid,
        "load": bool(raw.get("load", False)),
    }
    if "state" in PARAMETERS[kind]:
        if raw.get("state") is None:
            raise BadBackgroundAction(f"{kind} needs a state")
        action["state"] = state_name(raw["state"])
    if "data" in PARAMETERS[kind]:
        data = _json(raw.get("data"), "data")
        if kind == "update" and not isinstance(data, dict | None):
            raise BadBackgroundAction("update data must be a dict (merged into dialog_data)")
        action["data"] = data
    if "mode" in PARAMETERS[kind]:
        action["mode"] = _enum_value(StartMode, raw.get("mode"), "mode") or StartMode.NORMAL.value
    if "result" in PARAMETERS[kind]:
        action["result"] = _json(raw.get("result"), "result")
    if kind == "node":
        for field in ("router", "node"):
            if not isinstance(raw.get(field), str) or not raw[field]:
                raise BadBackgroundAction(f"node needs {field} as a non-empty string")
            action[field] = raw[field]
        action["data"] = _json(raw.get("data") or {}, "data")
        if not isinstance(action["data"], dict):
            raise BadBackgroundAction("node data must be a dict (the node's data as JSON)")
        return action
    action["show_mode"] = _enum_value(ShowMode, raw.get("show_mode"), "show_mode")
    return action


def register_node_router(name: str, mover: NodeMover) -> None:
    """Let "node" actions for the NodeRouter ``name`` be performed by ``mover``."""
    _node_movers[name] = mover


def describe(action: dict[str, Any]) -> str:
    """A short line for logs: ``start MainMenu:menu for chat 1 (bot default, id …)``."""
    what = action.get("action", "?")
    if action.get("state"):
        what = f"{what} {action['state']}"
    return (
        f"{what} for user {action.get('user_id')} in chat {action.get('chat_id')} "
        f"(bot {action.get('bot')!r}, action {action.get('id')})"
    )


async def perform(action: dict[str, Any]) -> None:
    """Do one action through aiogram_dialog's background manager, to completion.

    Raises BadBackgroundAction for an action that can never succeed (unknown state, bad
    shape); Telegram and database errors propagate for the caller to retry.
    """
    from botdialogs.background.manager import bg_manager

    action = validate_action(action)
    if action["action"] == "node":
        await _move_to_node(action)
        return
    manager = bg_manager(
        action["bot"],
        action["user_id"],
        action["chat_id"],
        stack_id=action["stack_id"],
        thread_id=action["thread_id"],
        business_connection_id=action["business_connection_id"],
        load=action["load"],
    )
    show_mode = ShowMode(action["show_mode"]) if action["show_mode"] else None
    kind = action["action"]
    logger.debug("Performing %s", describe(action))
    if kind == "start":
        await manager.start(
            resolve_state(action["bot"], action["state"]),
            data=action["data"],
            mode=StartMode(action["mode"]),
            show_mode=show_mode,
        )
    elif kind == "switch_to":
        await manager.switch_to(resolve_state(action["bot"], action["state"]), show_mode=show_mode)
    elif kind == "update":
        await manager.update(action["data"], show_mode=show_mode)
    else:
        await manager.done(action["result"], show_mode=show_mode)


async def _move_to_node(action: dict[str, Any]) -> None:
    from botdialogs.engine.bots import get_dispatcher

    # Loading the bot's router builds its NodeRouters, which register their movers.
    get_dispatcher(action["bot"])
    mover = _node_movers.get(action["router"])
    if mover is None:
        raise BadBackgroundAction(f"No NodeRouter named {action['router']!r} in this process")
    logger.debug("Performing %s", describe(action))
    await mover(action)
