"""One chat's stored dialog read, by three paths, with many chats at once (PostgreSQL).

Measures what DjangoStorage's unit of work does on its first read: FSM records, stacks,
contexts and chat rows of one chat. Paths: Django's ORM through sync_to_async (the default,
one shared thread), the same ORM calls in a thread pool, and psycopg's async API on a small
connection pool. Prints reads/s and the ratio to the ORM path, measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/botdialogs_bench python bench/read_paths.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHATS = 50
READS = 20
SQL = [
    "SELECT * FROM botdialogs_fsmrecord WHERE bot_id=%s AND chat_id=%s AND thread_id=0 "
    "AND business_connection_id=''",
    "SELECT * FROM botdialogs_dialogstack WHERE bot_id=%s AND chat_id=%s AND thread_id=0 "
    "AND business_connection_id=''",
    "SELECT * FROM botdialogs_dialogcontext WHERE bot_id=%s AND chat_id=%s AND thread_id=0 "
    "AND business_connection_id=''",
    "SELECT * FROM botdialogs_telegramchat WHERE bot_id=%s AND chat_id=%s",
]


async def orm_path(thread_sensitive: bool) -> float:
    from asgiref.sync import sync_to_async

    from botdialogs.storage.orm import OrmDatabase
    from botdialogs.storage.rows import ChatScope

    database = OrmDatabase(None)

    def read(chat_id: int) -> None:
        database.load_scope_sync(ChatScope(1, chat_id, 0, ""))

    async def chat(chat_id: int) -> None:
        for _ in range(READS):
            await sync_to_async(read, thread_sensitive=thread_sensitive)(chat_id)

    started = time.perf_counter()
    await asyncio.gather(*(chat(c) for c in range(CHATS)))
    return CHATS * READS / (time.perf_counter() - started)


async def psycopg_path(conninfo: str) -> float:
    import psycopg

    connections = [await psycopg.AsyncConnection.connect(conninfo) for _ in range(10)]
    idle: asyncio.Queue = asyncio.Queue()
    for connection in connections:
        idle.put_nowait(connection)

    async def chat(chat_id: int) -> None:
        for _ in range(READS):
            connection = await idle.get()
            try:
                async with connection.transaction():
                    for sql in SQL:
                        await (await connection.execute(sql, (1, chat_id))).fetchall()
            finally:
                idle.put_nowait(connection)

    started = time.perf_counter()
    await asyncio.gather(*(chat(c) for c in range(CHATS)))
    result = CHATS * READS / (time.perf_counter() - started)
    for connection in connections:
        await connection.close()
    return result


def main() -> None:
    sys.argv = sys.argv[:1]
    from bench.storage_updates import setup_django

    if setup_django() != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    from django.db import connection

    conninfo = os.environ["DATABASE_URL"]
    results: dict[str, list[float]] = {"orm, one thread": [], "orm, pool": [], "psycopg": []}
    for _ in range(3):
        results["orm, one thread"].append(asyncio.run(orm_path(True)))
        results["orm, pool"].append(asyncio.run(orm_path(False)))
        results["psycopg"].append(asyncio.run(psycopg_path(conninfo)))
    connection.close()
    base = statistics.median(results["orm, one thread"])
    print(f"{CHATS} chats x {READS} reads of one chat's rows (4 queries), median of 3")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<16} {median:>8.0f} reads/s {median / base:>6.2f}x")


if __name__ == "__main__":
    main()
