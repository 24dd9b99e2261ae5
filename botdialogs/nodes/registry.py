"""Stable string keys for node classes: the key is what is stored, never a class path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botdialogs.exceptions import BotDialogsError
from botdialogs.nodes.node import Node

NodeClass = type[Node[Any, Any, Any, Any]]
C = TypeVar("C", bound=NodeClass)


class UnknownNode(BotDialogsError):
    """A stored node key that no registered node class has (renamed or removed)."""


class NodeRegistry:
    """Maps keys to node classes, both ways.

    ``@registry.register("cart")`` on a class registers it; renaming the class is then
    harmless, and renaming the key is the one change stored users notice (they go back to
    the start node).
    """

    def __init__(self) -> None:
        self._classes: dict[str, NodeClass] = {}
        self._keys: dict[NodeClass, str] = {}

    def register(self, key: str) -> Callable[[C], C]:
        """A class decorator registering the class under ``key``."""

        def decorate(node_class: C) -> C:
            self.add(key, node_class)
            return node_class

        return decorate

    def add(self, key: str, node_class: NodeClass) -> None:
        """Register ``node_class`` under ``key``; a key or class is registered once."""
        if not key or len(key) > 128:
            raise ValueError(f"A node key is 1 to 128 characters, not {key!r}")
        if self._classes.get(key, node_class) is not node_class:
            raise ValueError(f"Node key {key!r} is taken by {self._classes[key].__qualname__}")
        if self._keys.get(node_class, key) != key:
            raise ValueError(
                f"{node_class.__qualname__} is registered as {self._keys[node_class]!r}"
            )
        self._classes[key] = node_class
        self._keys[node_class] = key

    def get(self, key: str) -> NodeClass:
        """The class registered under ``key``; raises UnknownNode."""
        try:
            return self._classes[key]
        except KeyError:
            raise UnknownNode(f"No node is registered under {key!r}") from None

    def key_of(self, node: Node[Any, Any, Any, Any] | NodeClass) -> str:
        """The key of a node or node class; raises UnknownNode for an unregistered class."""
        node_class = node if isinstance(node, type) else type(node)
        try:
            return self._keys[node_class]
        except KeyError:
            raise UnknownNode(f"{node_class.__qualname__} is not registered") from None

    def node_keys(self) -> list[str]:
        """Every registered key, sorted (the admin's choices)."""
        return sorted(self._classes)
