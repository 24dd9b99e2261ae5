"""Growth: what an update costs when the tables already hold many dialog stacks.

Each size has a PostgreSQL database of its own (the runner names them
``<bench database>_growth_<size>``), filled once and reused: a fill stops where the rows
already are. The filler rows are copies of a real chat: the counter dialog is started and
pressed once in a template chat through the Dispatcher, then its stack, context and chat rows
are cloned server-side (``INSERT … SELECT … generate_series``, one statement per batch) under
other chat ids, so the filler has exactly the shape the storage writes today.

Commands (``python -m bench.growth COMMAND``, DATABASE_URL on the size's database):

- ``fill --stacks N``: make sure N filler stacks (with their contexts and chats) are stored;
- ``measure``: dialog updates/s of the counter dialog on DjangoStorage (as the engine table's
  ``django-pg`` row), then the measured chats are deleted again so the size stays N;
- ``admin``: the dialog stack changelist (bench/admin_list.py) against the plain indexed query;
- ``size``: database bytes per stored stack, with its contexts and all indexes.

Each prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from psycopg import sql

TEMPLATE_CHAT = 7
FILLER_BASE = 1_000_000_000
# Measured chats have ids from here up (the runner's ids are time based, about 1.7e12).
MEASURED_BASE = 1_000_000_000_000
BATCH = 50_000


def _tables() -> dict[str, Any]:
    from botdialogs.models import DialogContext, DialogStack, FsmRecord, TelegramChat

    return {"stack": DialogStack, "context": DialogContext, "chat": TelegramChat, "fsm": FsmRecord}


def _columns(model: Any) -> list[str]:
    return [field.column for field in model._meta.concrete_fields if field.column != "id"]


def _connect() -> Any:
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


def filler_count(connection: Any) -> int:
    """Filler stacks stored so far."""
    table = _tables()["stack"]._meta.db_table
    query = sql.SQL("SELECT count(*) FROM {} WHERE chat_id >= %s AND chat_id < %s")
    return connection.execute(
        query.format(sql.Identifier(table)), (FILLER_BASE, MEASURED_BASE)
    ).fetchone()[0]


def _clone_value(column: str, template: str) -> sql.Composable:
    """The SELECT expression of one column of a clone of the template row ``template``."""
    if column in ("chat_id", "user_id"):
        return sql.SQL("%(base)s::bigint + n")
    if column in ("updated_at", "last_seen", "first_seen"):
        # Spread in time, as a real table is: the admin lists by -updated_at.
        return sql.SQL("{}.{} - n * interval '1 second'").format(
            sql.Identifier(template), sql.Identifier(column)
        )
    return sql.SQL("{}.{}").format(sql.Identifier(template), sql.Identifier(column))


def clone_batch(connection: Any, start: int, stop: int) -> None:
    """Filler chats ``start``..``stop - 1``: stack and contexts (linked), chat and FSM rows."""
    tables = _tables()
    stack, context = tables["stack"], tables["context"]
    stack_columns = _columns(stack)
    context_columns = [c for c in _columns(context) if c != "stack_id"]
    query = sql.SQL(
        "WITH numbers AS "
        "(SELECT n FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS n), "
        "stacks AS (INSERT INTO {stack} ({stack_columns}) SELECT {stack_values} "
        "FROM {stack} AS t CROSS JOIN numbers WHERE t.chat_id = %(template)s "
        "RETURNING id, chat_id) "
        "INSERT INTO {context} ({context_columns}, stack_id) SELECT {context_values}, s.id "
        "FROM stacks AS s JOIN {context} AS t ON t.chat_id = %(template)s, "
        "LATERAL (SELECT s.chat_id - %(base)s::bigint AS n) AS clone"
    ).format(
        stack=sql.Identifier(stack._meta.db_table),
        stack_columns=sql.SQL(", ").join(map(sql.Identifier, stack_columns)),
        stack_values=sql.SQL(", ").join(_clone_value(c, "t") for c in stack_columns),
        context=sql.Identifier(context._meta.db_table),
        context_columns=sql.SQL(", ").join(map(sql.Identifier, context_columns)),
        context_values=sql.SQL(", ").join(_clone_value(c, "t") for c in context_columns),
    )
    params = {"start": start, "stop": stop - 1, "template": TEMPLATE_CHAT, "base": FILLER_BASE}
    with connection.transaction():
        connection.execute(query, params)
        for kind in ("chat", "fsm"):
            model = tables[kind]
            columns = _columns(model)
            connection.execute(
                sql.SQL(
                    "INSERT INTO {table} ({columns}) SELECT {values} FROM {table} AS t "
                    "CROSS JOIN generate_series(%(start)s::bigint, %(stop)s::bigint) AS n "
                    "WHERE t.chat_id = %(template)s"
                ).format(
                    table=sql.Identifier(model._meta.db_table),
                    columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
                    values=sql.SQL(", ").join(_clone_value(c, "t") for c in columns),
                ),
                params,
            )


async def make_template() -> None:
    """The template chat: /start and one press of the counter dialog on DjangoStorage."""
    from bench import engine

    engine.use_counter_bot(engine.storage_setting("django-pg"))
    from aiogram import Bot

    from botdialogs.engine import bots
    from botdialogs.testing import RecordingSession

    dispatcher = bots.get_dispatcher("default")
    bot = Bot(bots.bot_token("default"), session=RecordingSession())
    callbacks = await engine.start_chats(dispatcher, bot, [TEMPLATE_CHAT])
    await engine.press(dispatcher, bot, TEMPLATE_CHAT, callbacks[TEMPLATE_CHAT])
    await engine.close_dispatcher(dispatcher)


def fill(stacks: int) -> dict[str, Any]:
    """Store ``stacks`` filler stacks unless they are there already (then it is quick)."""
    started = time.perf_counter()
    with _connect() as connection:
        stack_table = _tables()["stack"]._meta.db_table
        template = connection.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE chat_id = %s").format(
                sql.Identifier(stack_table)
            ),
            (TEMPLATE_CHAT,),
        ).fetchone()[0]
        if not template:
            asyncio.run(make_template())
        existing = filler_count(connection)
        for start in range(existing, stacks, BATCH):
            clone_batch(connection, start, min(start + BATCH, stacks))
            print(f"\r  {min(start + BATCH, stacks)} stacks", end="", file=sys.stderr, flush=True)
        if existing < stacks:
            print(file=sys.stderr)
            for model in _tables().values():  # what autovacuum would have done by now
                connection.execute(
                    sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(model._meta.db_table))
                )
        stored = filler_count(connection)
    return {"stacks": stored, "filled": stored - existing, "seconds": time.perf_counter() - started}


def remove_measured_chats() -> None:
    """Delete what a measurement stored, so the database keeps its size."""
    with _connect() as connection, connection.transaction():
        for kind in ("context", "stack", "chat", "fsm"):
            table = _tables()[kind]._meta.db_table
            connection.execute(
                sql.SQL("DELETE FROM {} WHERE chat_id >= %s").format(sql.Identifier(table)),
                (MEASURED_BASE,),
            )


def measure(chats: int, presses: int, first_chat: int) -> dict[str, float]:
    """Updates/s of the counter dialog on DjangoStorage at this database's size."""
    from bench import engine

    if first_chat < MEASURED_BASE:
        raise ValueError(f"measured chat ids start at {MEASURED_BASE}")
    try:
        result = asyncio.run(engine.measure("django-pg", chats, presses, first_chat))
    finally:
        remove_measured_chats()
    return {**result, "ms_per_update": 1000 / result["updates_per_s"]}


def admin(repeat: int) -> dict[str, float]:
    """Milliseconds of the stack changelist and of the plain query it cannot avoid."""
    from bench import admin_list
    from botdialogs.models import DialogStack

    plain = admin_list.timed(
        lambda: list(DialogStack.objects.order_by("-updated_at")[:100]), repeat
    )
    changelist = admin_list.timed(admin_list.changelist({}), repeat)
    return {"plain_ms": plain, "changelist_ms": changelist, "ratio": changelist / plain}


def size() -> dict[str, float]:
    """Bytes per stored stack: tables, TOAST and indexes of stacks and contexts, / stacks."""
    tables = {kind: model._meta.db_table for kind, model in _tables().items()}
    with _connect() as connection:
        bytes_of = {
            kind: connection.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]
            for kind, table in tables.items()
        }
        stacks = connection.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(tables["stack"]))
        ).fetchone()[0]
    with_contexts = bytes_of["stack"] + bytes_of["context"]
    return {
        "stacks": stacks,
        "bytes_per_stack": with_contexts / stacks,
        "bytes_per_stack_with_chat": (with_contexts + bytes_of["chat"]) / stacks,
        "total_mib": sum(bytes_of.values()) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("fill", "measure", "admin", "size"))
    parser.add_argument("--stacks", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--first-chat", type=int, default=int(time.time()) * 1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from bench import engine

    if engine.setup_django() != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    if args.command == "fill":
        result = fill(args.stacks)
    elif args.command == "measure":
        result = measure(args.chats, args.presses, args.first_chat)
    elif args.command == "admin":
        result = admin(args.repeat)
    else:
        result = size()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
