"""Code-first dialogs: one class per step, typed data, stored with the chat's state.

Owns: the node base class (:mod:`.node`), the key registry (:mod:`.registry`) and the
router that runs steps in the update's unit of work (:mod:`.router`).
May import: :mod:`botdialogs.background`, :mod:`botdialogs.engine`, :mod:`botdialogs.storage`
and the core modules; only ``botdialogs.admin`` and the entry points import it.
"""

from botdialogs.nodes.node import NoData, Node
from botdialogs.nodes.registry import NodeRegistry, UnknownNode
from botdialogs.nodes.router import (
    NodeRouter,
    NodesNotConfigured,
    NodeUser,
    StaleSchema,
    current_dialog_manager,
    get_router,
    routers,
)

__all__ = [
    "NoData",
    "Node",
    "NodeRegistry",
    "NodeRouter",
    "NodeUser",
    "NodesNotConfigured",
    "StaleSchema",
    "UnknownNode",
    "current_dialog_manager",
    "get_router",
    "routers",
]
