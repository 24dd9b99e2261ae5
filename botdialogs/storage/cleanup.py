"""Deleting what DjangoStorage's TTLs have expired.

Expired values already read as empty (see :mod:`botdialogs.storage`); this removes the rows
so the tables do not grow forever. Work goes in batches of primary keys, each batch in its
own short transaction, so a million expired rows never sit in memory and the bot is never
blocked for long. Every batch re-checks its condition when it writes, so a row the bot
refreshed in the meantime stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import router, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from botdialogs.conf import get_settings
from botdialogs.models import DialogContext, DialogStack, FsmRecord, ProcessedUpdate
from botdialogs.storage.storage import DjangoStorage, _as_timedelta

BATCH_SIZE = 1000
T = TypeVar("T")


def delete_expired(now: datetime | None = None, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Delete expired FSM records, stacks (with their contexts) and orphan contexts.

    An FSM record whose state and data are both expired (or empty) is deleted; one with only
    one part expired gets that part cleared. Orphan contexts (no stack) expire
    ``data_ttl`` after their last update, as DjangoStorage reads them. Returns how many rows
    went, by kind: ``fsm_records``, ``fsm_cleared``, ``stacks``, ``contexts``, and
    ``update_ids`` (webhook deduplication records past ``UPDATE_ID_TTL``).
    """
    now = now or timezone.now()
    data_ttl = _storage_data_ttl()
    counts = {"fsm_records": 0, "fsm_cleared": 0, "stacks": 0, "contexts": 0}

    state_gone = Q(state__isnull=True) | Q(state_expires_at__lte=now)
    data_gone = Q(data_expires_at__lte=now) | Q(data_expires_at__isnull=True, data={})
    fsm = FsmRecord.objects.filter(Q(state_expires_at__lte=now) | Q(data_expires_at__lte=now))
    for deleted in _in_batches(fsm.filter(state_gone & data_gone), batch_size, _delete):
        counts["fsm_records"] += deleted.get(FsmRecord._meta.label, 0)
    state_expired = FsmRecord.objects.filter(state_expires_at__lte=now)
    for cleared in _in_batches(
        state_expired, batch_size, lambda qs: qs.update(state=None, state_expires_at=None)
    ):
        counts["fsm_cleared"] += cleared
    data_expired = FsmRecord.objects.filter(data_expires_at__lte=now)
    for cleared in _in_batches(
        data_expired, batch_size, lambda qs: qs.update(data={}, data_expires_at=None)
    ):
        counts["fsm_cleared"] += cleared

    stacks = DialogStack.objects.filter(expires_at__lte=now)
    for deleted in _in_batches(stacks, batch_size, _delete):
        counts["stacks"] += deleted.get(DialogStack._meta.label, 0)
        counts["contexts"] += deleted.get(DialogContext._meta.label, 0)

    if data_ttl is not None:
        orphans = DialogContext.objects.filter(stack__isnull=True, updated_at__lte=now - data_ttl)
        for deleted in _in_batches(orphans, batch_size, _delete):
            counts["contexts"] += deleted.get(DialogContext._meta.label, 0)
    counts["update_ids"] = delete_expired_updates()
    return counts


def delete_expired_updates() -> int:
    """Delete ProcessedUpdate rows older than ``UPDATE_ID_TTL``; returns how many.

    Sync on purpose: it is meant for :func:`delete_expired` and Celery beat.
    """
    cutoff = timezone.now() - timedelta(seconds=get_settings().update_id_ttl)
    deleted, _ = ProcessedUpdate.objects.filter(received_at__lt=cutoff).delete()
    return deleted


def _storage_data_ttl() -> timedelta | None:
    """The ``data_ttl`` that ``BOTDIALOGS['STORAGE']`` gives a DjangoStorage, if any.

    Read from the setting, not from the process's storage object: that registry lives in
    :mod:`botdialogs.engine`, a layer above this one. Rows store their other expiries.
    """
    setting = get_settings().storage
    backend = import_string(setting.backend) if setting.backend else None
    if not (isinstance(backend, type) and issubclass(backend, DjangoStorage)):
        return None
    return _as_timedelta(setting.config.get("data_ttl"))


def _delete(queryset: QuerySet) -> dict[str, int]:
    return queryset.delete()[1]


def _in_batches(
    queryset: QuerySet[Any], batch_size: int, apply: Callable[[QuerySet[Any]], T]
) -> Iterator[T]:
    """``apply`` to ``queryset`` a batch of rows at a time, until no row matches.

    Each batch locks its rows (on databases that can), and ``apply`` sees the batch through
    ``queryset`` again, so its condition is checked once more at write time.
    """
    using = router.db_for_write(queryset.model)
    while True:
        with transaction.atomic(using=using):
            pks = list(
                queryset.select_for_update().order_by().values_list("pk", flat=True)[:batch_size]
            )
            if not pks:
                return
            result = apply(queryset.filter(pk__in=pks))
        yield result
        if len(pks) < batch_size:
            return
