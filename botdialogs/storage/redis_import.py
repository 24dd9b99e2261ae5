"""Moving in from Redis: copy what an aiogram ``RedisStorage`` holds into DjangoStorage.

aiogram's ``RedisStorage`` keeps each :class:`~aiogram.fsm.storage.base.StorageKey` in two
Redis strings named by its ``DefaultKeyBuilder``: ``…:state`` (the state string) and
``…:data`` (the data as JSON). aiogram_dialog stores its stacks and contexts through the same
storage, under the destinies ``aiogd:stack:<stack id>`` and ``aiogd:context:<intent id>``.
:func:`import_redis` reads those keys with SCAN (never KEYS), in batches of one MGET each,
reads their names back as StorageKeys (:mod:`.redis_keys`), and writes every one through
:meth:`DjangoStorage.set_state` / :meth:`DjangoStorage.set_data`, so the rows are the ones
the engine itself writes: a dialog goes on where it was. Chats of a batch are written side
by side (``concurrency``); the keys of one chat one after another.

- Idempotent: each key replaces its row, so a second run leaves the same rows.
- Stacks go last: a stack row holds its top dialog's state and links its contexts, which
  must be there first (see :meth:`DjangoStorage.set_data`).
- A key or value that cannot be read is reported (``skipped``) and the import goes on; a
  database failure stops it (run it again: nothing is copied twice).
- Not copied: Redis TTLs (DjangoStorage's own ``state_ttl`` / ``data_ttl`` apply from the
  import on), event isolation locks (``…:lock``), and keys Redis no longer holds (a re-run
  does not delete rows whose key went away in between).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.storage.base import StorageKey

from botdialogs.exceptions import UnstorableData
from botdialogs.storage.redis_keys import BadRedisKey, Part, RedisKeyLayout
from botdialogs.storage.rows import CONTEXT_PREFIX, STACK_PREFIX, ChatScope, chat_scope, to_json
from botdialogs.storage.storage import DjangoStorage

try:
    from redis.asyncio import Redis
except ImportError as error:  # pragma: no cover - redis ships with the demo's requirements
    raise ImportError(
        "botdialogs_import_redis reads Redis with the redis package: pip install redis"
    ) from error

BATCH_SIZE = 500
#: Chats copied at once: PostgreSQL commits of several connections share a WAL flush.
CONCURRENCY = 8


# -- values -----------------------------------------------------------------------------------
def read_state(raw: bytes) -> str:
    """A state value as aiogram wrote it (UTF-8 text); raises :class:`BadRedisKey`."""
    try:
        state = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRedisKey(f"its state is not UTF-8 text ({error.reason})") from None
    if "\x00" in state:
        raise BadRedisKey("its state holds a NUL character, which PostgreSQL cannot store")
    return state


def read_data(raw: bytes, key: StorageKey) -> dict[str, Any]:
    """A data value as DjangoStorage will store it; raises :class:`BadRedisKey`.

    aiogram wrote it with ``json.dumps``: it must be a JSON object that DjangoStorage can
    store, and aiogram_dialog's stacks and contexts must have the shape it reads back.
    """
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise BadRedisKey(f"its data is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise BadRedisKey(f"its data is a JSON {type(data).__name__}, not an object")
    try:
        data = to_json(data, key)
    except UnstorableData as error:
        raise BadRedisKey(str(error)) from None
    if key.destiny.startswith(STACK_PREFIX) and data:
        _check_stack(data, key.destiny[len(STACK_PREFIX) :])
    elif key.destiny.startswith(CONTEXT_PREFIX):
        _check_context(data, key.destiny[len(CONTEXT_PREFIX) :])
    return data


def _check_stack(data: dict[str, Any], stack_id: str) -> None:
    intents = data.get("intents")
    if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
        raise BadRedisKey("its dialog stack has no list of intent ids")
    if data.get("_id", stack_id) != stack_id:
        raise BadRedisKey(f"its dialog stack calls itself {data['_id']!r}, not {stack_id!r}")


def _check_context(data: dict[str, Any], intent_id: str) -> None:
    if data.get("_intent_id") != intent_id:
        raise BadRedisKey(
            f"its dialog context is of intent {data.get('_intent_id')!r}, not {intent_id!r}"
        )
    if not isinstance(data.get("state"), str):
        raise BadRedisKey("its dialog context has no state")


# -- the import ---------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    """What an import copied (a dry run: would copy), by kind, and what it left."""

    #: The SCAN MATCH pattern, and how many keys it found.
    pattern: str = ""
    found: int = 0
    states: int = 0
    fsm_data: int = 0
    stacks: int = 0
    contexts: int = 0
    #: Keys or values that could not be read, each reported to ``on_skip``.
    skipped: int = 0
    #: Event isolation locks (``…:lock``): not state, but a sign a bot still runs on Redis.
    locks: int = 0
    #: Keys that went away between the scan and the read.
    vanished: int = 0
    #: Keys copied, by bot id.
    bot_ids: Counter[int] = field(default_factory=Counter)

    @property
    def copied(self) -> int:
        """Keys copied (or that a dry run would copy)."""
        return self.states + self.fsm_data + self.stacks + self.contexts


#: ``progress(keys done, keys found)``, after each batch.
Progress = Callable[[int, int], None]
#: ``on_skip(key, reason)`` for each key that is not copied.
OnSkip = Callable[[str, str], None]


async def import_redis(
    url: str,
    storage: DjangoStorage,
    layout: RedisKeyLayout,
    *,
    bot_id: int | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    concurrency: int = CONCURRENCY,
    progress: Progress | None = None,
    on_skip: OnSkip | None = None,
) -> ImportSummary:
    """Copy the aiogram RedisStorage at ``url`` into ``storage`` (see the module docstring).

    ``bot_id``: the bot of every key when the layout has no bot id; with one, only that
    bot's keys are copied (None: every bot's). ``dry_run``: read and check everything,
    write nothing. ``concurrency``: chats written at once (each write is its own
    transaction; on PostgreSQL at most the storage's ``max_connections`` run together).
    Database errors propagate; bad keys go to ``on_skip``.
    """
    if not layout.with_bot_id and bot_id is None:
        raise ValueError("Keys without a bot id (with_bot_id off) need the bot_id they belong to")
    if batch_size < 1 or concurrency < 1:
        raise ValueError("batch_size and concurrency must be at least 1")
    redis = Redis.from_url(url)
    run = _Import(
        redis,
        storage,
        layout,
        bot_id,
        dry_run,
        progress,
        on_skip,
        batch_size,
        asyncio.Semaphore(concurrency),
    )
    try:
        await run.run()
    finally:
        await redis.aclose()
    return run.summary


@dataclass
class _Import:
    """One run of :func:`import_redis`: what it reads, where it writes, what it counted."""

    redis: Redis
    storage: DjangoStorage
    layout: RedisKeyLayout
    bot_id: int | None
    dry_run: bool
    progress: Progress | None
    on_skip: OnSkip | None
    batch_size: int = BATCH_SIZE
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENCY))
    summary: ImportSummary = field(default_factory=ImportSummary)
    #: Keys handled so far, for the progress bar.
    done: int = 0

    async def run(self) -> None:
        pattern = self.summary.pattern = self.layout.pattern(self.bot_id)
        # A first pass over the names only, for the progress bar's total.
        async for names in self._scan(pattern):
            self.summary.found += len(names)
        self._report()
        # Stacks last: storing one reads its top context and links the stored contexts.
        async for names in self._scan(pattern):
            await self._copy_batch(names, stacks=False)
        async for names in self._scan(self.layout.pattern(self.bot_id, STACK_PREFIX)):
            await self._copy_batch(names, stacks=True)

    async def _scan(self, pattern: str) -> AsyncIterator[list[bytes]]:
        batch: list[bytes] = []
        async for name in self.redis.scan_iter(match=pattern, count=self.batch_size):
            batch.append(name)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _copy_batch(self, names: list[bytes], *, stacks: bool) -> None:
        wanted: list[tuple[str, StorageKey, Part]] = []
        for raw_name in names:
            # The first pass reports a bad key; the stacks' pass only looks for stacks.
            name = raw_name.decode("utf-8", errors="backslashreplace")
            try:
                if name.encode() != raw_name:
                    raise BadRedisKey("its name is not UTF-8 text")
                key, part = self.layout.parse(name, self.bot_id)
            except BadRedisKey as error:
                if not stacks:
                    self._skip(name, str(error))
                    self.done += 1
                continue
            is_stack = part == "data" and key.destiny.startswith(STACK_PREFIX)
            if is_stack != stacks:
                continue
            self.done += 1
            if part == "lock":
                self.summary.locks += 1
            else:
                wanted.append((name, key, part))
        values = await self.redis.mget([name for name, _, _ in wanted]) if wanted else []
        chats: dict[ChatScope, list[tuple[str, StorageKey, Part, bytes | str | None]]] = {}
        for (name, key, part), raw in zip(wanted, values, strict=True):
            chats.setdefault(chat_scope(key), []).append((name, key, part, raw))
        # Chats side by side (each write waits for its commit), one chat's keys in order: the
        # state and the data of a key share one row.
        async with asyncio.TaskGroup() as group:
            for items in chats.values():
                group.create_task(self._copy_chat(items))
        self._report()

    async def _copy_chat(
        self, items: list[tuple[str, StorageKey, Part, bytes | str | None]]
    ) -> None:
        async with self.slots:
            for name, key, part, raw in items:
                if raw is None:
                    await self._missing(name)
                    continue
                try:
                    await self._copy(key, part, raw if isinstance(raw, bytes) else raw.encode())
                except BadRedisKey as error:
                    self._skip(name, str(error))

    async def _copy(self, key: StorageKey, part: Part, raw: bytes) -> None:
        if part == "state":
            state = read_state(raw)
            if not self.dry_run:
                await self.storage.set_state(key, state)
            self.summary.states += 1
        else:
            data = read_data(raw, key)
            if not self.dry_run:
                await self.storage.set_data(key, data)
            if key.destiny.startswith(STACK_PREFIX):
                self.summary.stacks += 1
            elif key.destiny.startswith(CONTEXT_PREFIX):
                self.summary.contexts += 1
            else:
                self.summary.fsm_data += 1
        self.summary.bot_ids[key.bot_id] += 1

    async def _missing(self, name: str) -> None:
        # MGET answers None both for a key that went away and for one of another type.
        kind = await self.redis.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "none":
            self.summary.vanished += 1
        else:
            self._skip(name, f"holds a Redis {kind}, not a string")

    def _skip(self, name: str, reason: str) -> None:
        self.summary.skipped += 1
        if self.on_skip is not None:
            self.on_skip(name, reason)

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.summary.found)
