"""The Node base class: one step of a code-first dialog, with typed data.

A node is built in exactly one way, whether it is new or loaded from storage: its
constructor, called with ``data=`` (:meth:`Node.restore` validates stored JSON and then calls
the constructor). So whatever ``__init__`` sets up is there after a reload, unlike a pydantic
``model_validate`` that skips ``__init__``.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

ContextT = TypeVar("ContextT")
EventT = TypeVar("EventT")
UserIdT = TypeVar("UserIdT")
DataT = TypeVar("DataT", bound=BaseModel)
NodeT = TypeVar("NodeT", bound="Node[Any, Any, Any, Any]")


class NoData(BaseModel):
    """The data of a node that keeps none."""


class Node(Generic[ContextT, EventT, UserIdT, DataT]):
    """One step: reacts to an event and returns the next node (``self`` to stay).

    Subclass as ``class Cart(Node[Ctx, Message, int, CartData])``: the fourth type argument
    is the pydantic model of ``self.data`` (or set ``data_model``). Raise ``schema_version``
    when the data model changes incompatibly; stored data that no longer validates sends the
    user back to the start node (see :class:`botdialogs.nodes.NodeRouter`).
    """

    data_model: ClassVar[type[BaseModel]] = NoData
    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The data model is the fourth type argument of a parametrised Node base.
        for base in getattr(cls, "__orig_bases__", ()):
            args = typing.get_args(base)
            if len(args) == 4 and isinstance(args[3], type) and issubclass(args[3], BaseModel):
                cls.data_model = args[3]

    def __init__(self, data: DataT | None = None) -> None:
        """A node with ``data`` (a fresh ``data_model()`` when None).

        Subclasses that set up more must accept ``data=`` and call ``super().__init__``.
        """
        self.data: DataT = data if data is not None else self.data_model()  # type: ignore[assignment]

    @classmethod
    def restore(cls: type[NodeT], data: Mapping[str, Any]) -> NodeT:
        """The node from stored JSON: validated by ``data_model``, then built by ``__init__``.

        Raises pydantic's ValidationError when the data no longer fits the model.
        """
        return cls(data=cls.data_model.model_validate(dict(data)))

    def dump(self) -> dict[str, Any]:
        """The node's data as JSON, as it is stored."""
        return self.data.model_dump(mode="json")

    async def on_enter(self, user_id: UserIdT, ctx: ContextT) -> None:
        """Called when the user arrives at this node (send its message here)."""

    async def on_event(
        self, user_id: UserIdT, event: EventT, ctx: ContextT
    ) -> Node[Any, Any, Any, Any]:
        """Handle ``event``; return the next node, or ``self`` to stay."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data!r})"
