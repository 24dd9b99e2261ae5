"""Sending monitor events to the channel layer without making the publisher wait.

:func:`submit` never blocks and never raises: it hands the event to an event loop that
sends it with ``group_send``, in order, at most ``MAX_PENDING`` events behind (more are
dropped: the monitor is a view, not a log).

Which loop sends:

- the in-memory channel layer is not thread-safe and lives on the loop of its consumers:
  events go to the loop of this process's watchers (:func:`.presence.local_loop`), whatever
  thread or loop published them (a Celery task run eagerly on a private loop included);
- a shared layer (channels-redis) can be used from any loop: events go to a daemon thread
  with a loop of its own, so a publisher's short-lived loop (``call_async`` in a Celery
  task) never has to outlive its sends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from botdialogs.monitor import presence

logger = logging.getLogger("botdialogs.monitor")

#: Events waiting to be sent; more are dropped (debug log).
MAX_PENDING = 1000
#: The channel-layer group every monitor consumer joins.
GROUP = "botdialogs.monitor"
MESSAGE_TYPE = "monitor.event"


class _Outbox:
    """A loop that sends events one after another, and the count of those not yet sent."""

    def __init__(self) -> None:
        self.pending = 0
        self.queues: dict[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]] = {}
        self.senders: set[asyncio.Task[None]] = set()
        self.thread_loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0
        self.lock = threading.Lock()
        self.start_lock = threading.Lock()

    def count(self, change: int) -> None:
        with self.lock:
            self.pending += change

    def target(self) -> asyncio.AbstractEventLoop | None:
        if not presence.shared_layer():
            return presence.local_loop()
        if self.thread_loop is None or self.pid != os.getpid():
            with self.start_lock:
                if self.thread_loop is None or self.pid != os.getpid():
                    self.thread_loop = _start_thread()
                    self.pid = os.getpid()
                    self.queues.clear()
        return self.thread_loop

    def enqueue(self, event: dict[str, Any]) -> None:
        """Runs on the target loop: queue the event, starting the loop's sender if needed."""
        loop = asyncio.get_running_loop()
        queue = self.queues.get(loop)
        if queue is None:
            queue = self.queues[loop] = asyncio.Queue()
            sender = loop.create_task(self.drain(queue), name="botdialogs-monitor-sender")
            self.senders.add(sender)
            sender.add_done_callback(self.senders.discard)
        queue.put_nowait(event)

    async def drain(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        from channels.layers import get_channel_layer

        while True:
            event = await queue.get()
            try:
                layer = get_channel_layer()
                if layer is not None:
                    await layer.group_send(GROUP, {"type": MESSAGE_TYPE, "event": event})
            except Exception:
                logger.debug("Could not send a monitor event", exc_info=True)
            finally:
                self.count(-1)


_outbox = _Outbox()


def submit(event: dict[str, Any]) -> None:
    """Send ``event`` to the monitor group soon, from any thread; never blocks or raises."""
    try:
        loop = _outbox.target()
        if loop is None or loop.is_closed():
            return
        if _outbox.pending >= MAX_PENDING:
            logger.debug("Monitor event dropped: %d events wait to be sent", _outbox.pending)
            return
        _outbox.count(1)
        try:
            loop.call_soon_threadsafe(_outbox.enqueue, event)
        except RuntimeError:  # the loop closed meanwhile
            _outbox.count(-1)
    except Exception:
        logger.debug("Could not submit a monitor event", exc_info=True)


def pending() -> int:
    """Events submitted and not sent yet (tests wait for 0)."""
    return _outbox.pending


def _start_thread() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_forever, name="botdialogs-monitor-sender", daemon=True
    )
    thread.start()
    return loop
