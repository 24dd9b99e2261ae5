"""The docs' API reference names what a site imports; each module's ``__all__`` says the same."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "api.md"


def referenced() -> dict[str, set[str]]:
    """{module: names} from the first column of the API reference's table."""
    text = API_PAGE.read_text()
    section = text[text.index("# Public API") :]
    found: dict[str, set[str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `botdialogs."):
            continue
        module = None
        for token in re.findall(r"`([^`]+)`", line.split("|")[1]):
            token = token.split("(")[0]
            if token.startswith("botdialogs."):
                try:
                    importlib.import_module(token)
                except ImportError:
                    module, name = token.rsplit(".", 1)
                    found.setdefault(module, set()).add(name)
                else:
                    module = token
                    found.setdefault(module, set())
            elif module is not None:
                found[module].add(token)
    return found


def test_every_referenced_name_is_exported_and_exists() -> None:
    modules = referenced()
    assert "botdialogs.storage" in modules and "botdialogs.background" in modules
    for module_name, names in modules.items():
        module = importlib.import_module(module_name)
        exported = set(getattr(module, "__all__", ()))
        for name in names:
            assert hasattr(module, name), f"{module_name}.{name} does not exist"
            assert name in exported, f"{module_name}.{name} is not in its __all__"
