"""Import paths that moved, kept working with a DeprecationWarning (one table, one finder).

``import botdialogs.bots`` gives the very module ``botdialogs.engine.bots`` (so patching
either name patches both); the warning names the new path. To be removed in 1.0.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

#: Old import path -> new one.
MOVED = {
    "botdialogs.bots": "botdialogs.engine.bots",
    "botdialogs.middleware": "botdialogs.engine.middleware",
    "botdialogs.sync": "botdialogs.engine.sync",
    "botdialogs.webhook": "botdialogs.http.delivery",
    "botdialogs.views": "botdialogs.http.views",
    "botdialogs.isolation": "botdialogs.storage.isolation",
    "botdialogs.pg": "botdialogs.storage.connections",
    "botdialogs.cleanup": "botdialogs.storage.cleanup",
    "botdialogs.broadcast": "botdialogs.background.broadcast",
    "botdialogs.repair": "botdialogs.admin.repair",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.target}; the old path goes away in 1.0",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module ran when it was imported."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths in :data:`MOVED` and hands out the new modules."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        """A spec whose loader returns the moved module, for old paths only."""
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
