"""A ``successful_payment`` recorded once per charge id, with the site's change, in one commit.

The payment's row and the site's change (its order marked paid: the ``PAYMENT_RECEIVED``
hook) are added to the update's unit of work
(:meth:`botdialogs.storage.UnitOfWork.add_write`), so they commit with the update's id and
dialog state in round trip 2, or not at all. The row is inserted with ``ON CONFLICT DO
NOTHING`` on (bot, ``telegram_payment_charge_id``) and carries a token of this unit; each of
the site's updates is run only where a payment row with that token exists. So a second
``successful_payment`` with the same charge id (another update id, or the same one
redelivered) inserts nothing and changes nothing, on every database and under concurrency.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiogram.types import Message
from django.db import transaction
from django.db.models import Exists, QuerySet
from django.db.models.sql import UpdateQuery
from django.utils import timezone
from django.utils.module_loading import import_string

from botdialogs.conf import get_settings
from botdialogs.models import StarPayment
from botdialogs.storage import ExtraWrite

PAYMENT_TABLE = StarPayment._meta.db_table
# JSON travels as text (no psycopg import: a SQLite site may not have it).
_PLACEHOLDERS = {"successful_payment": "%s::jsonb"}


class RowsUpdate(NamedTuple):
    """A site change that commits with a payment: ``queryset.update(**values)``.

    Values are plain values or expressions (``F("paid") + 1``), as ``QuerySet.update``
    takes them. It runs in the update's own transaction, only for the payment's first
    recording.
    """

    queryset: QuerySet[Any]
    values: dict[str, Any]


@dataclass(frozen=True)
class ReceivedPayment:
    """A ``successful_payment`` as the ``PAYMENT_RECEIVED`` hook sees it."""

    bot_name: str
    update_id: int
    chat_id: int
    user_id: int
    telegram_payment_charge_id: str
    provider_payment_charge_id: str
    invoice_payload: str
    total_amount: int
    currency: str
    raw: dict[str, Any]

    @classmethod
    def from_message(cls, bot_name: str, update_id: int, message: Message) -> ReceivedPayment:
        """The payment in ``message`` (which has ``successful_payment``)."""
        paid = message.successful_payment
        assert paid is not None
        user_id = message.from_user.id if message.from_user is not None else message.chat.id
        return cls(
            bot_name=bot_name,
            update_id=update_id,
            chat_id=message.chat.id,
            user_id=user_id,
            telegram_payment_charge_id=paid.telegram_payment_charge_id,
            provider_payment_charge_id=paid.provider_payment_charge_id or "",
            invoice_payload=paid.invoice_payload,
            total_amount=paid.total_amount,
            currency=paid.currency,
            raw=paid.model_dump(mode="json", exclude_none=True),
        )


def site_changes(payment: ReceivedPayment) -> list[RowsUpdate]:
    """What the ``PAYMENT_RECEIVED`` hook changes for ``payment`` (sync: it may read)."""
    path = get_settings().payment_received
    if not path:
        return []
    changes = list(import_string(path)(payment) or ())
    for change in changes:
        if not isinstance(change, RowsUpdate):
            raise TypeError(f"{path} gave {change!r}, not a botdialogs.payments.RowsUpdate")
    return changes


def payment_write(payment: ReceivedPayment, changes: Iterable[RowsUpdate]) -> ExtraWrite:
    """The payment's row and the site's changes, as one write of the update's unit of work.

    Sync (Django compiles the site's querysets): call it in a thread from async code.
    """
    token = uuid.uuid4()
    values = {
        "bot_name": payment.bot_name,
        "telegram_payment_charge_id": payment.telegram_payment_charge_id,
        "provider_payment_charge_id": payment.provider_payment_charge_id,
        "invoice_payload": payment.invoice_payload,
        "user_id": payment.user_id,
        "chat_id": payment.chat_id,
        "total_amount": payment.total_amount,
        "currency": payment.currency,
        "status": StarPayment.Status.PAID.value,
        "successful_payment": payment.raw,
        "update_id": payment.update_id,
        "recorded_by": token,
        "paid_at": timezone.now(),
        "refund_answer": "",
    }
    first_time = Exists(
        StarPayment.objects.filter(
            bot_name=payment.bot_name,
            telegram_payment_charge_id=payment.telegram_payment_charge_id,
            recorded_by=token,
        )
    )
    guarded = [RowsUpdate(c.queryset.filter(first_time), c.values) for c in changes]
    insert = (
        f"INSERT INTO {PAYMENT_TABLE} ({', '.join(values)}) "
        f"VALUES ({', '.join(_PLACEHOLDERS.get(name, '%s') for name in values)}) "
        "ON CONFLICT (bot_name, telegram_payment_charge_id) DO NOTHING"
    )
    params = tuple(json.dumps(v) if isinstance(v, dict) else v for v in values.values())

    def orm() -> None:
        StarPayment.objects.bulk_create([StarPayment(**values)], ignore_conflicts=True)
        for change in guarded:
            change.queryset.update(**change.values)

    return ExtraWrite(
        statements=((insert, params), *(_update_sql(change) for change in guarded)),
        orm=orm,
    )


def record_alone(write: ExtraWrite) -> None:
    """Run ``write`` in a transaction of its own (a storage without a unit of work)."""
    with transaction.atomic():
        write.orm()


def _update_sql(change: RowsUpdate) -> tuple[str, tuple[Any, ...]]:
    """``change`` as the SQL ``QuerySet.update`` would run (PostgreSQL's %s placeholders)."""
    queryset = change.queryset
    query = queryset.query.chain(UpdateQuery)
    assert isinstance(query, UpdateQuery)
    query.add_update_values(change.values)
    compiler = query.get_compiler(queryset.db)
    compiler.pre_sql_setup()
    sql, params = compiler.as_sql()
    return sql, tuple(params)
