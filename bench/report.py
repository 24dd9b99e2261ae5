"""Numbers into text: medians with their spread, ratios, markdown tables, and the facts of the
run (machine, versions) that bench/RESULTS.md starts with."""

from __future__ import annotations

import importlib.metadata
import platform
import statistics
from collections.abc import Sequence
from typing import Any

PACKAGES = (
    "Django",
    "aiogram",
    "aiogram-dialog",
    "psycopg",
    "uvicorn",
    "uvloop",
    "aiohttp",
    "redis",
)


def spread(values: Sequence[float], digits: int = 0) -> str:
    """ "median (min-max)" of ``values``."""
    if not values:
        return "n/a"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def ratios(values: Sequence[float], peers: Sequence[float]) -> list[float]:
    """Round by round ``value / peer``: each pair was measured minutes apart at most."""
    return [value / peer for value, peer in zip(values, peers, strict=False) if peer]


def column(results: Sequence[dict[str, Any]], key: str) -> list[float]:
    """One metric of every round."""
    return [result[key] for result in results if key in result]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def versions(postgres_version: str, redis_version: str) -> dict[str, str]:
    """Python, the packages that matter, and the servers."""
    found = {"Python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["PostgreSQL"] = postgres_version
    found["Redis"] = redis_version
    return found
