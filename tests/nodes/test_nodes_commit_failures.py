"""A node step whose unit of work fails to close is retried, and the retry moves the user
once: the "node" background action (``nodes.user(...).to(node)``), as a worker performs it.

Faults at the storage backend's commit and rollback (:mod:`tests.support.faults`), after the
node's own code ran well. PostgreSQL in the second CI pass, SQLite in the first.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from botdialogs.background import performing
from botdialogs.exceptions import StorageUnavailable
from botdialogs.models import BackgroundAction
from botdialogs.nodes import router as nodes_router
from botdialogs.storage import DjangoStorage
from tests.nodes.test_nodes import BOT, Basket, Shopping, nodes, storage, stored
from tests.support.faults import FAULTS, failing_close
from tests.support.faults import stored as committed

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["storage"]  # the nodes tests' storage fixture


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_failure_at_commit_of_a_node_move_is_retried_and_moves_once(
    storage: DjangoStorage, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nodes_router, "get_bot", lambda name: BOT)
    monkeypatch.setattr(nodes_router, "get_storage", lambda: storage)
    action = nodes.user(21).action(Shopping(Basket(items=["tea"])))
    record = BackgroundAction.objects.filter(action_id=action["id"]).values_list
    with failing_close(fault, storage.database) as injected:
        if committed(fault):  # COMMIT got through: its row says done, nothing to retry
            assert await performing.aperform_recorded(action) == performing.DUPLICATE
        else:
            with pytest.raises(StorageUnavailable):
                await performing.aperform_recorded(action)
    assert injected == [fault]
    status = await sync_to_async(lambda: list(record("status", flat=True)))()
    assert status == (["done"] if committed(fault) else ["retry"])  # never "rejected"
    assert ((await stored(21)) is not None) == committed(fault)
    sent = len(BOT.sent)

    expected = performing.DUPLICATE if committed(fault) else performing.PERFORMED
    assert await performing.aperform_recorded(action) == expected  # the retry
    assert await performing.aperform_recorded(action) == performing.DUPLICATE
    assert BOT.sent[sent:] == ([] if committed(fault) else [(21, "1 item(s)")])
    row = await stored(21)
    assert row is not None and (row.node_key, row.data) == ("shopping", {"items": ["tea"]})
