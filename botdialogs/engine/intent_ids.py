"""Intent and stack ids that do not collide: a wider id generator for aiogram_dialog.

aiogram_dialog 2.6 makes every intent and stack id from ``new_int_id()``, which is the current
second plus one of 100 random values: two dialogs started in one chat within the same second
get the same intent id about one time in 100 (upstream pull request #501 is about this). The
stack then names one id twice and both dialogs share one context.

:func:`install` (called from ``BotDialogsConfig.ready()``) replaces that function in
aiogram_dialog's ``stack`` module with :func:`new_int_id`: 64 random bits, written by
aiogram_dialog's own ``id_to_str`` in the same alphabet (``0-9a-zA-Z``), at most 11 characters.
aiogram_dialog looks the function up on every call, so stacks and contexts made after
``install()`` use it. The ids ride in callback data: 11 characters instead of about 6 leave 5
bytes less of Telegram's 64 for widget ids. Storage refuses a stack that still names an id
twice (:class:`botdialogs.exceptions.IntentIdCollision`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from aiogram_dialog.api.entities import stack as _stack

#: Random bits per id: any repeat among a million ids has odds of about 1 in 37 million.
RANDOM_BITS = 64

#: aiogram_dialog's own generator, kept to show (in tests) what it does without us.
UPSTREAM_NEW_INT_ID: Callable[[], int] = _stack.new_int_id


def new_int_id() -> int:
    """A new random id of :data:`RANDOM_BITS` bits (no clock: ids of one second differ too)."""
    return secrets.randbits(RANDOM_BITS)


def install() -> None:
    """Make aiogram_dialog draw intent and stack ids from :func:`new_int_id` (idempotent)."""
    _stack.new_int_id = new_int_id


def installed() -> bool:
    """Whether aiogram_dialog currently uses :func:`new_int_id`."""
    return _stack.new_int_id is new_int_id
