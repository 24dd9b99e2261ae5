"""The names of aiogram's Redis keys, read back: which StorageKey (and part) a key is.

aiogram's ``DefaultKeyBuilder`` joins ``<prefix>:<bot_id?>:<business_connection_id?>:
<chat_id>:<thread_id?>:<user_id>:<destiny?>:<part>``; which optional parts are there
depends on its options and on the key. :class:`RedisKeyLayout` holds those options and
reverses the join for :mod:`.redis_import`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from aiogram.fsm.storage.base import DEFAULT_DESTINY, DefaultKeyBuilder, StorageKey

#: The parts of a key aiogram writes: the FSM state, the data, an event isolation lock.
Part = Literal["state", "data", "lock"]
PARTS: tuple[Part, ...] = ("state", "data", "lock")
# What a Redis glob pattern treats as special, escaped in prefixes and separators.
GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


class BadRedisKey(ValueError):
    """A Redis key, or its value, that cannot be imported (the message says why)."""


@dataclass(frozen=True)
class RedisKeyLayout:
    """The options of the ``DefaultKeyBuilder`` whose keys are imported (same defaults).

    aiogram writes ``<prefix>:<bot_id?>:<business_connection_id?>:<chat_id>:<thread_id?>:
    <user_id>:<destiny?>:<state|data>``; the optional parts are there by the options, and
    the thread and business connection ids only when the key has them.
    """

    prefix: str = "fsm"
    separator: str = ":"
    with_bot_id: bool = False
    with_business_connection_id: bool = False
    with_destiny: bool = False

    def __post_init__(self) -> None:
        if not self.separator:
            raise ValueError("The key separator cannot be empty")

    def key_builder(self) -> DefaultKeyBuilder:
        """aiogram's key builder with these options (what wrote the keys)."""
        return DefaultKeyBuilder(
            prefix=self.prefix,
            separator=self.separator,
            with_bot_id=self.with_bot_id,
            with_business_connection_id=self.with_business_connection_id,
            with_destiny=self.with_destiny,
        )

    def pattern(self, bot_id: int | None = None, destiny_prefix: str = "") -> str:
        """The SCAN MATCH pattern of the keys of this layout (of one bot, when it is known)."""
        head = _glob_escape(self.prefix + self.separator)
        if self.with_bot_id and bot_id is not None:
            head += _glob_escape(f"{bot_id}{self.separator}")
        if destiny_prefix:
            return f"{head}*{_glob_escape(destiny_prefix)}*"
        return f"{head}*"

    def parse(self, name: str, bot_id: int | None) -> tuple[StorageKey, Part]:
        """The StorageKey and the part ("state", "data", "lock") a Redis key names.

        ``bot_id``: the bot of keys without one (``with_bot_id`` off). Raises
        :class:`BadRedisKey`. A parse counts only if aiogram's builder makes the same key of
        it again. Where two parses fit, the one with a thread id wins (a destiny that starts
        with a number and the separator would read as one), and a business connection id
        that is all digits reads as a chat id.
        """
        head = self.prefix + self.separator
        if not name.startswith(head):
            raise BadRedisKey(f"does not start with {head!r}")
        body, _, part = name[len(head) :].rpartition(self.separator)
        if part not in PARTS:
            raise BadRedisKey(f"ends in {part!r}, not in state or data")
        tokens = body.split(self.separator)
        if self.with_bot_id:
            bot_id = _integer(tokens.pop(0))
            if bot_id is None:
                raise BadRedisKey("its bot id is not a number")
        elif bot_id is None:
            raise ValueError("Keys without a bot id need the bot_id they belong to")
        builder = self.key_builder()
        for key in self._candidates(tokens, bot_id):
            if builder.build(key, cast(Part, part)) == name:
                return key, cast(Part, part)
        hint = ""
        if not self.with_destiny and len(tokens) > 2:
            hint = " (written with with_destiny=True? aiogram_dialog needs it)"
        raise BadRedisKey(f"does not fit the key layout {self.describe()}{hint}")

    def _candidates(self, tokens: list[str], bot_id: int) -> list[StorageKey]:
        found = [
            key
            for with_connection in ((False, True) if self.with_business_connection_id else (False,))
            for with_thread in (True, False)
            if (key := self._read_key(tokens, bot_id, with_connection, with_thread)) is not None
        ]
        # Stable sort: most likely first, but aiogram_dialog's keys have user_id == chat_id.
        found.sort(key=lambda key: key.destiny.startswith("aiogd:") and key.user_id != key.chat_id)
        return found

    def _read_key(
        self, tokens: list[str], bot_id: int, with_connection: bool, with_thread: bool
    ) -> StorageKey | None:
        rest = list(tokens)
        connection = rest.pop(0) if with_connection and rest else None
        width = 3 if with_thread else 2
        if len(rest) < width or (with_connection and not connection):
            return None
        numbers = [_integer(token) for token in rest[:width]]
        if None in numbers:
            return None
        chat_id, user_id = numbers[0], numbers[-1]
        destiny = rest[width:]
        if not self.with_destiny and destiny:
            return None
        return StorageKey(
            bot_id=bot_id,
            chat_id=chat_id,  # type: ignore[arg-type]
            user_id=user_id,  # type: ignore[arg-type]
            thread_id=numbers[1] if with_thread else None,
            business_connection_id=connection,
            destiny=self.separator.join(destiny) if self.with_destiny else DEFAULT_DESTINY,
        )

    def describe(self) -> str:
        """The layout as the command's options would give it."""
        options = [f"prefix {self.prefix!r}", f"separator {self.separator!r}"]
        options += [
            name
            for name, on in (
                ("with_bot_id", self.with_bot_id),
                ("with_business_connection_id", self.with_business_connection_id),
                ("with_destiny", self.with_destiny),
            )
            if on
        ]
        return ", ".join(options)


def _glob_escape(text: str) -> str:
    return GLOB_SPECIAL.sub(r"\\\1", text)


def _integer(token: str) -> int | None:
    # str(int(token)) == token: no "+1", " 1", "1_0" or "01", which aiogram never writes.
    try:
        value = int(token)
    except ValueError:
        return None
    return value if str(value) == token else None
