"""Deleting expired storage rows: botdialogs.cleanup.delete_expired and botdialogs_cleanup."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from botdialogs.conf import get_settings
from botdialogs.models import DialogContext, DialogStack, FsmRecord, ProcessedUpdate
from botdialogs.storage.cleanup import delete_expired

pytestmark = pytest.mark.django_db

BOT = 42
NOW = timezone.now()
PAST = NOW - timedelta(minutes=1)
FUTURE = NOW + timedelta(hours=1)


def with_data_ttl(seconds: int) -> Any:
    """override_settings with DjangoStorage(data_ttl=seconds)."""
    return override_settings(
        BOTDIALOGS={
            **settings.BOTDIALOGS,
            "STORAGE": {
                "BACKEND": "botdialogs.storage.DjangoStorage",
                "CONFIG": {"state_ttl": seconds, "data_ttl": seconds},
            },
        }
    )


def fsm(chat_id: int, **values: Any) -> FsmRecord:
    return FsmRecord.objects.create(bot_id=BOT, chat_id=chat_id, user_id=chat_id, **values)


def stack(chat_id: int, expires_at: Any, contexts: int = 2) -> DialogStack:
    intents = [f"i{chat_id}x{n}" for n in range(contexts)]
    row = DialogStack.objects.create(
        bot_id=BOT,
        chat_id=chat_id,
        user_id=chat_id,
        intents=intents,
        depth=contexts,
        state="S:top",
        expires_at=expires_at,
    )
    for intent in intents:
        DialogContext.objects.create(
            bot_id=BOT, chat_id=chat_id, user_id=chat_id, intent_id=intent, stack=row, state="S:a"
        )
    return row


def test_cleanup_deletes_fsm_records_whose_state_and_data_expired() -> None:
    gone = fsm(1, state="S:a", data={"x": 1}, state_expires_at=PAST, data_expires_at=PAST)
    gone_state_only = fsm(2, state="S:a", data={}, state_expires_at=PAST)
    live = fsm(3, state="S:a", data={"x": 1}, state_expires_at=FUTURE, data_expires_at=FUTURE)
    no_ttl = fsm(4, state="S:a", data={"x": 1})

    counts = delete_expired(now=NOW)

    assert counts["fsm_records"] == 2
    remaining = set(FsmRecord.objects.values_list("pk", flat=True))
    assert remaining == {live.pk, no_ttl.pk}
    assert gone.pk not in remaining and gone_state_only.pk not in remaining


def test_cleanup_clears_only_the_expired_part_of_an_fsm_record() -> None:
    state_expired = fsm(
        1, state="S:a", data={"keep": 1}, state_expires_at=PAST, data_expires_at=FUTURE
    )
    data_expired = fsm(
        2, state="S:b", data={"old": 1}, state_expires_at=FUTURE, data_expires_at=PAST
    )

    counts = delete_expired(now=NOW)

    assert counts == {
        "fsm_records": 0,
        "fsm_cleared": 2,
        "stacks": 0,
        "contexts": 0,
        "update_ids": 0,
    }
    state_expired.refresh_from_db()
    data_expired.refresh_from_db()
    assert (state_expired.state, state_expired.data) == (None, {"keep": 1})
    assert state_expired.state_expires_at is None
    assert (data_expired.state, data_expired.data) == ("S:b", {})
    assert data_expired.data_expires_at is None


def test_cleanup_deletes_expired_stacks_with_their_contexts() -> None:
    expired = stack(1, PAST, contexts=3)
    live = stack(2, FUTURE)
    forever = stack(3, None)

    counts = delete_expired(now=NOW)

    assert counts["stacks"] == 1
    assert counts["contexts"] == 3
    assert not DialogStack.objects.filter(pk=expired.pk).exists()
    assert set(DialogStack.objects.values_list("pk", flat=True)) == {live.pk, forever.pk}
    assert DialogContext.objects.filter(stack=live).count() == 2
    assert DialogContext.objects.filter(stack=forever).count() == 2


def test_cleanup_deletes_orphan_contexts_older_than_the_data_ttl() -> None:
    old = DialogContext.objects.create(bot_id=BOT, chat_id=1, user_id=1, intent_id="o", state="S")
    fresh = DialogContext.objects.create(bot_id=BOT, chat_id=2, user_id=2, intent_id="f", state="S")
    DialogContext.objects.filter(pk=old.pk).update(updated_at=NOW - timedelta(seconds=61))

    with with_data_ttl(60):
        counts = delete_expired(now=NOW)

    assert counts["contexts"] == 1
    assert list(DialogContext.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_cleanup_keeps_orphan_contexts_without_a_data_ttl() -> None:
    old = DialogContext.objects.create(bot_id=BOT, chat_id=1, user_id=1, intent_id="o", state="S")
    DialogContext.objects.filter(pk=old.pk).update(updated_at=NOW - timedelta(days=365))

    assert delete_expired(now=NOW)["contexts"] == 0
    assert DialogContext.objects.filter(pk=old.pk).exists()


def test_cleanup_works_in_batches_until_nothing_expired_is_left() -> None:
    for chat_id in range(7):
        stack(chat_id, PAST, contexts=1)
        fsm(chat_id, state="S", state_expires_at=PAST)

    counts = delete_expired(now=NOW, batch_size=3)

    assert counts == {
        "fsm_records": 7,
        "fsm_cleared": 0,
        "stacks": 7,
        "contexts": 7,
        "update_ids": 0,
    }
    assert not DialogStack.objects.exists()
    assert not DialogContext.objects.exists()
    assert not FsmRecord.objects.exists()


def test_cleanup_command_prints_the_counts() -> None:
    stack(1, PAST, contexts=2)
    fsm(1, state="S", data={"x": 1}, state_expires_at=PAST, data_expires_at=PAST)
    fsm(2, state="S", data={"x": 1}, state_expires_at=PAST, data_expires_at=FUTURE)
    out = StringIO()

    call_command("botdialogs_cleanup", stdout=out)

    assert out.getvalue().strip() == (
        "Deleted 1 FSM records, 1 dialog stacks and 2 dialog contexts; "
        "cleared the expired part of 1 FSM records; forgot 0 webhook update ids."
    )
    assert FsmRecord.objects.count() == 1


def test_cleanup_command_rejects_a_batch_size_below_one() -> None:
    with pytest.raises(CommandError, match="batch-size"):
        call_command("botdialogs_cleanup", "--batch-size", "0")


def test_cleanup_forgets_webhook_update_ids_past_their_ttl() -> None:
    ttl = timedelta(seconds=get_settings().update_id_ttl)
    ProcessedUpdate.objects.create(bot_name="default", update_id=1, received_at=NOW - 2 * ttl)
    ProcessedUpdate.objects.create(bot_name="default", update_id=2)

    assert delete_expired()["update_ids"] == 1
    assert list(ProcessedUpdate.objects.values_list("update_id", flat=True)) == [2]
