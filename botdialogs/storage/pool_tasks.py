"""Which tasks belong to a connection pool (no psycopg here: SQLite sites import this too).

:mod:`.connections` opens each pool in a context marked :data:`IN_POOL`; the one sync-to-async
crossing (:mod:`botdialogs.engine.sync`) waits for a call's own tasks and not for those.
"""

from __future__ import annotations

import contextvars

#: True in the context a pool is opened in. psycopg-pool's scheduler and workers inherit it,
#: and so does every task they start (on Python 3.11 the scheduler's timed wait is a task of
#: its own, unnamed): a pool's tasks live until the pool closes and are nobody's work.
IN_POOL: contextvars.ContextVar[bool] = contextvars.ContextVar("botdialogs_in_pool", default=False)


def in_pool_context(context: contextvars.Context | None = None) -> bool:
    """Whether ``context`` (by default the current one) is one of our pools' own.

    A task created there (see :data:`IN_POOL`) belongs to a pool, which closes with its
    loop's other resources: code that waits for a caller's work must not wait for it.
    """
    return (context or contextvars.copy_context()).get(IN_POOL, False)
