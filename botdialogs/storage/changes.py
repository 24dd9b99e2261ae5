"""What a committed unit of work changed in the dialogs, told to the live monitor.

Computed only while someone watches (:func:`botdialogs.monitor.watching`), from the rows
the unit read (``original``) and the rows it committed (``rows``): a dialog context that
appeared was started, one that went was closed, one whose state changed was switched; a
change of ``dialog_data`` (or of a plain FSM record's data) names the keys it touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botdialogs.monitor import publish
from botdialogs.storage.rows import Row, RowKey, RowKind


def publish_changes(original: Mapping[RowKey, Row], rows: Mapping[RowKey, Row]) -> None:
    """Publish one monitor event per dialog change between ``original`` and ``rows``."""
    for row, after in rows.items():
        before = original.get(row) or Row()
        if after == before or row.kind not in (RowKind.CONTEXT, RowKind.FSM):
            continue
        who: dict[str, Any] = {"bot": row.bot_id, "chat_id": row.chat_id, "user_id": row.user_id}
        if row.kind is RowKind.CONTEXT:
            _context_changed(row.name, before.data, after.data, who)
        else:
            _fsm_changed(before, after, who)


def _context_changed(
    intent_id: str, before: dict[str, Any], after: dict[str, Any], who: dict[str, Any]
) -> None:
    if not before and after:
        publish("dialog.started", state=after.get("state"), intent_id=intent_id, **who)
        return
    if before and not after:
        publish("dialog.closed", state=before.get("state"), intent_id=intent_id, **who)
        return
    if before.get("state") != after.get("state"):
        publish(
            "dialog.switched",
            state=after.get("state"),
            previous=before.get("state"),
            intent_id=intent_id,
            **who,
        )
    keys = changed_keys(before.get("dialog_data") or {}, after.get("dialog_data") or {})
    if keys:
        publish("data.changed", state=after.get("state"), keys=keys, **who)


def _fsm_changed(before: Row, after: Row, who: dict[str, Any]) -> None:
    if before.state != after.state:
        publish("state.changed", state=after.state, previous=before.state, **who)
    keys = changed_keys(before.data, after.data)
    if keys:
        publish("data.changed", state=after.state, keys=keys, **who)


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The keys added, removed or given another value, sorted."""
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
