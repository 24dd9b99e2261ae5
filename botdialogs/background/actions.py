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

One pydantic model per kind (:class:`StartAction`, :class:`SwitchToAction`,
:class:`UpdateAction`, :class:`DoneAction`, :class:`NodeAction`) says what each takes; the
dict is the model's dump, which is what ``BackgroundAction.payload`` stores and Celery sends.
"""

from __future__ import annotations

import logging
import typing
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final, Literal

from aiogram import Dispatcher
from aiogram.fsm.state import State
from aiogram_dialog import ShowMode, StartMode
from aiogram_dialog.setup import collect_dialogs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from botdialogs.conf import get_settings
from botdialogs.exceptions import BadBackgroundAction, UnknownBot
from botdialogs.storage.claims import Claim
from botdialogs.storage.jsonvalues import NotJson, json_copy

logger = logging.getLogger("botdialogs.background")

VERSION: Final = 1
#: The longest action id (the column's length).
ID_MAX_LENGTH = 64
#: NodeRouters by name, each with the coroutine that moves a user (botdialogs.nodes
#: registers them; background never imports nodes, which sits above it).
NodeMover = Callable[[dict[str, Any], Claim | None], Awaitable[None]]
_node_movers: dict[str, NodeMover] = {}
_states_cache: weakref.WeakKeyDictionary[Dispatcher, dict[str, State]] = weakref.WeakKeyDictionary()


def state_name(state: State | str) -> str:
    """``"Group:state"`` for a State or a name; the syntax is checked, not the existence."""
    name = state.state if isinstance(state, State) else state
    if not isinstance(name, str) or name.count(":") < 1 or not all(name.split(":", 1)):
        raise BadBackgroundAction(f"State {state!r} is not a State nor a 'Group:state' name")
    return name


# -- field types: each refuses bad input with the message the caller sees ----------------------


def _problem(message: str) -> PydanticCustomError:
    # The message travels as context: a bot name or a value may hold "{" and "}".
    return PydanticCustomError("bad_background_action", "{message}", {"message": message})


def _id_or_new(value: Any) -> Any:
    # An action built elsewhere may leave its id to us.
    if value is None or value == "":
        return uuid.uuid4().hex
    if not isinstance(value, str) or len(value) > ID_MAX_LENGTH:
        raise _problem(f"id must be a string of at most {ID_MAX_LENGTH} characters")
    return value


def _configured_bot(value: Any) -> Any:
    if not isinstance(value, str):
        # A list would escape as a TypeError (unhashable) from the settings lookup.
        raise _problem(f"No bot named {value!r} in BOTDIALOGS['BOTS']")
    try:
        get_settings().bot(value)
    except UnknownBot as error:
        raise _problem(str(error)) from error
    return value


def _state_name(value: Any) -> Any:
    try:
        return state_name(value)
    except BadBackgroundAction as error:
        raise _problem(str(error)) from error


def _json(field: str, *, must_be_dict: str | None = None) -> Callable[[Any], Any]:
    """A check that copies a value as JSON (refusing NaN, Infinity, NUL, objects)."""

    def check(value: Any) -> Any:
        # Refused here, in the caller, not by PostgreSQL in a worker.
        try:
            value = json_copy(value)
        except NotJson as error:
            raise _problem(f"{field} must be JSON data: {error}") from error
        if must_be_dict is not None and not isinstance(value, dict | None):
            raise _problem(must_be_dict)
        return value

    return check


def _enum_value(
    enum: type[StartMode] | type[ShowMode], field: str, default: str | None = None
) -> Callable[[Any], Any]:
    """A check that takes a member, its value or its name (any case) and gives the value;
    None gives ``default``."""

    def check(value: Any) -> Any:
        if value is None:
            return default
        if isinstance(value, enum):
            return value.value
        if isinstance(value, str):
            for member in enum:
                if value.lower() in (member.value.lower(), member.name.lower()):
                    return member.value
        choices = ", ".join(m.name.lower() for m in enum)
        raise _problem(f"{field}={value!r} is not one of {choices}")

    return check


ActionId = Annotated[str, BeforeValidator(_id_or_new)]
BotName = Annotated[str, BeforeValidator(_configured_bot)]
StateName = Annotated[str, BeforeValidator(_state_name)]
StartModeValue = Annotated[
    str, BeforeValidator(_enum_value(StartMode, "mode", StartMode.NORMAL.value))
]
ShowModeValue = Annotated[str | None, BeforeValidator(_enum_value(ShowMode, "show_mode"))]
NonEmpty = Annotated[str, Field(min_length=1)]


class ActionTarget(BaseModel):
    """What every action has: its id and the chat it is for (aiogram_dialog's ``bg()``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Literal[1] = VERSION
    id: ActionId = Field(default_factory=lambda: uuid.uuid4().hex)
    action: str
    bot: BotName
    user_id: int
    chat_id: int
    stack_id: str | None = None
    thread_id: int | None = None
    business_connection_id: str | None = None
    load: bool = False


class StartAction(ActionTarget):
    """Start the dialog of ``state`` with ``data`` as its start data."""

    action: Literal["start"]
    state: StateName
    data: Annotated[Any, AfterValidator(_json("data"))] = None
    mode: StartModeValue = StartMode.NORMAL.value
    show_mode: ShowModeValue = None


class SwitchToAction(ActionTarget):
    """Switch the current dialog to ``state``."""

    action: Literal["switch_to"]
    state: StateName
    show_mode: ShowModeValue = None


class UpdateAction(ActionTarget):
    """Merge ``data`` into the current dialog's ``dialog_data`` and show it again."""

    action: Literal["update"]
    data: Annotated[
        Any,
        AfterValidator(
            _json("data", must_be_dict="update data must be a dict (merged into dialog_data)")
        ),
    ] = None
    show_mode: ShowModeValue = None


class DoneAction(ActionTarget):
    """Close the current dialog with ``result`` for the one below it."""

    action: Literal["done"]
    result: Annotated[Any, AfterValidator(_json("result"))] = None
    show_mode: ShowModeValue = None


def _node_data(value: Any) -> Any:
    return _json("data", must_be_dict="node data must be a dict (the node's data as JSON)")(
        value or {}
    )


class NodeAction(ActionTarget):
    """Move the user to ``node`` of the NodeRouter ``router`` (botdialogs.nodes)."""

    action: Literal["node"]
    router: NonEmpty
    node: NonEmpty
    data: Annotated[Any, AfterValidator(_node_data)] = Field(default_factory=dict)


Action = StartAction | SwitchToAction | UpdateAction | DoneAction | NodeAction
KINDS: tuple[str, ...] = tuple(
    typing.get_args(model.model_fields["action"].annotation)[0] for model in typing.get_args(Action)
)
_ACTION: TypeAdapter[Action] = TypeAdapter(Annotated[Action, Field(discriminator="action")])


def parse_action(raw: Any) -> Action:
    """The action model of ``raw`` (a dict); raises BadBackgroundAction saying what is wrong."""
    if not isinstance(raw, dict):
        raise BadBackgroundAction(f"An action is a dict, not {type(raw).__name__}")
    try:
        return _ACTION.validate_python(raw)
    except ValidationError as error:
        raise BadBackgroundAction(_explain(raw, error.errors())) from None


def _explain(raw: dict[str, Any], errors: list[ErrorDetails]) -> str:
    """pydantic's errors as one line a site developer can act on."""
    kind = raw.get("action")
    problems: list[str] = []
    extra: list[str] = []
    for error in errors:
        loc = error["loc"][1:] if error["loc"][:1] == (kind,) else error["loc"]
        field = ".".join(str(part) for part in loc)
        value = error.get("input")
        match error["type"]:
            case "bad_background_action":
                problems.append(error["msg"])
            case "union_tag_invalid" | "union_tag_not_found":
                problems.append(f"action={kind!r} is not one of {', '.join(KINDS)}")
            case "extra_forbidden":
                extra.append(field)
            case "missing":
                problems.append(f"{kind} needs {'a state' if field == 'state' else field}")
            case "literal_error" if field == "v":
                problems.append(f"Unknown action format version {value!r}")
            case "int_type":
                problems.append(f"{field} must be an int, not {value!r}")
            case "string_type":
                problems.append(f"{field} must be a string, not {value!r}")
            case "bool_type":
                problems.append(f"{field} must be true or false, not {value!r}")
            case "string_too_short":
                problems.append(f"{kind} needs {field} as a non-empty string")
            case _:
                problems.append(f"{field}: {error['msg']}")
    if extra:
        problems.append(f"{kind} does not take {', '.join(sorted(extra))}")
    return "; ".join(problems)


def validate_action(raw: Any) -> dict[str, Any]:
    """A normalised copy of ``raw``; raises BadBackgroundAction saying what is wrong."""
    return parse_action(raw).model_dump()


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
    checked = parse_action(
        {
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
            **parameters,
        }
    )
    if check_state and isinstance(checked, StartAction | SwitchToAction):
        resolve_state(checked.bot, checked.state)
    return checked.model_dump()


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


async def perform(action: dict[str, Any], claim: Claim | None = None) -> None:
    """Do one action through aiogram_dialog's background manager, to completion.

    ``claim`` (the action's or a timer's) travels with the event to the unit of work that
    performs it, and commits with the state it changes. Raises BadBackgroundAction for an
    action that can never succeed (unknown state, bad shape); Telegram and database errors
    propagate for the caller to retry.
    """
    from botdialogs.background.manager import bg_manager

    checked = parse_action(action)
    if isinstance(checked, NodeAction):
        await _move_to_node(checked, claim)
        return
    manager = bg_manager(
        checked.bot,
        checked.user_id,
        checked.chat_id,
        stack_id=checked.stack_id,
        thread_id=checked.thread_id,
        business_connection_id=checked.business_connection_id,
        load=checked.load,
        claim=claim,
    )
    show_mode = ShowMode(checked.show_mode) if checked.show_mode else None
    logger.debug("Performing %s", describe(action))
    match checked:
        case StartAction():
            await manager.start(
                resolve_state(checked.bot, checked.state),
                data=checked.data,
                mode=StartMode(checked.mode),
                show_mode=show_mode,
            )
        case SwitchToAction():
            await manager.switch_to(resolve_state(checked.bot, checked.state), show_mode=show_mode)
        case UpdateAction():
            await manager.update(checked.data, show_mode=show_mode)
        case DoneAction():
            await manager.done(checked.result, show_mode=show_mode)


async def _move_to_node(action: NodeAction, claim: Claim | None) -> None:
    from botdialogs.engine.bots import get_dispatcher

    # Loading the bot's router builds its NodeRouters, which register their movers.
    get_dispatcher(action.bot)
    mover = _node_movers.get(action.router)
    if mover is None:
        raise BadBackgroundAction(f"No NodeRouter named {action.router!r} in this process")
    payload = action.model_dump()
    logger.debug("Performing %s", describe(payload))
    await mover(payload, claim)
