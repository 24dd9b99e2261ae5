"""Fault injection: a bot's Bot API calls to local Telegram fail as Telegram's sometimes do.

Three kinds, for a number of calls, a time, or until cleared (:class:`FaultSpec`):

- ``server_error``: the call answers ``status`` (500 by default) with Telegram's 5xx body;
- ``timeout``: the call hangs ``hang`` seconds (65 by default: past aiogram's 60 s client
  timeout), then answers 504; the bot has given up by then;
- ``flood``: the call answers 429 "Too Many Requests: retry after N" with ``retry_after``.

A failed call is never performed: nothing is stored, so the bot may repeat it safely.
Answers a bot carries out in its webhook response (``{"method": ...}``) are not calls of
its own and meet no fault. The fault lives in the database (:class:`LocalFault`), so every
server process serves it alike; taking one call of it locks the row, so ``calls`` is exact
under concurrent calls.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from http import HTTPStatus
from typing import Any, Literal

from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from botdialogs.localtg.accounts import local_bot
from botdialogs.localtg.errors import BotApiError
from botdialogs.localtg.models import LocalFault

#: The longest hang a timeout fault may ask for, in seconds.
MAX_HANG = 600.0


class FaultSpec(BaseModel):
    """A fault as the user API and the test kit give it (``kind`` None clears the fault)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["server_error", "timeout", "flood"] | None
    calls: int | None = Field(default=None, ge=1, description="Fail this many calls.")
    seconds: float | None = Field(default=None, gt=0, description="Fail calls for this long.")
    methods: list[str] = Field(default_factory=list, description="Only these methods.")
    status: int = Field(default=500, ge=500, le=599)
    retry_after: int = Field(default=5, ge=1)
    hang: float = Field(default=65.0, gt=0, le=MAX_HANG)


def describe(fault: LocalFault | None) -> dict[str, Any] | None:
    """The fault as the user API shows it (None: no fault set)."""
    if fault is None:
        return None
    return {
        "kind": fault.kind,
        "active": _active(fault),
        "calls_left": fault.calls_left,
        "until": fault.until.isoformat() if fault.until else None,
        "methods": fault.methods,
        "status": fault.status,
        "retry_after": fault.retry_after,
        "hang": fault.hang_seconds,
        "calls_failed": fault.calls_failed,
    }


def set_fault(bot_name: str, spec: FaultSpec) -> dict[str, Any] | None:
    """Give a local bot this fault, in place of any it had; ``kind`` None clears it."""
    with transaction.atomic():
        bot = local_bot(bot_name)
        LocalFault.objects.filter(bot=bot).delete()
        if spec.kind is None:
            return None
        fault = LocalFault.objects.create(
            bot=bot,
            kind=spec.kind,
            methods=sorted({method.lower() for method in spec.methods}),
            calls_left=spec.calls,
            until=timezone.now() + timedelta(seconds=spec.seconds) if spec.seconds else None,
            status=spec.status,
            retry_after=spec.retry_after,
            hang_seconds=spec.hang,
        )
    return describe(fault)


def read_fault(bot_name: str) -> dict[str, Any] | None:
    """The local bot's fault, spent or not (None: none set)."""
    return describe(LocalFault.objects.filter(bot=local_bot(bot_name)).first())


def _active(fault: LocalFault) -> bool:
    if fault.calls_left is not None and fault.calls_left <= 0:
        return False
    return fault.until is None or timezone.now() < fault.until


def take(token: str, method: str) -> LocalFault | None:
    """The fault this call of ``method`` meets, counted as one failed call; None for none."""
    with transaction.atomic():
        # "of self": lock the fault row only, never the bot row the call itself may lock.
        fault = (
            LocalFault.objects.select_for_update(of=("self",))
            .filter(bot__token=token)
            .select_related("bot")
            .first()
        )
        if fault is None or not _active(fault):
            return None
        if fault.methods and method.lower() not in fault.methods:
            return None
        if fault.calls_left is not None:
            fault.calls_left -= 1
        fault.calls_failed += 1
        fault.save(update_fields=["calls_left", "calls_failed"])
    return fault


async def answer(fault: LocalFault) -> BotApiError:
    """What the faulty call answers (after its hang, for a timeout)."""
    if fault.kind == LocalFault.Kind.TIMEOUT:
        await asyncio.sleep(fault.hang_seconds)
        return BotApiError(504, "Gateway Timeout")
    if fault.kind == LocalFault.Kind.FLOOD:
        wait = fault.retry_after
        return BotApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
    try:
        description = HTTPStatus(fault.status).phrase
    except ValueError:  # a 5xx code without a standard name, such as 520
        description = "Server Error"
    return BotApiError(fault.status, description)
