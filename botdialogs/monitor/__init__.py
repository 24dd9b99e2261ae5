"""The live monitor's event stream: what the dialogs do, published from one place.

Any part of botdialogs reports an event with :func:`publish` (sync or async code alike);
staff watch the stream on ``/botdialogs/monitor/`` (:mod:`botdialogs.views`, the websocket
consumer :class:`botdialogs.consumers.MonitorConsumer`). Publishing is free while nobody
watches: :func:`watching` is a process-local check (see :mod:`.presence`), and nothing is
built or sent when it says no.

Who publishes, each right after its commit: the webhook (:mod:`botdialogs.http.webhook`,
"update received" and handler errors, with :class:`UpdateEvents` keeping an update's events
in reading order), the unit of work (:mod:`botdialogs.storage.changes`: dialog started,
switched, closed, data keys), background actions (:mod:`botdialogs.background.performing`,
whichever way they are delivered) and timers (:mod:`botdialogs.timers.firing`).

Owns: :mod:`.events` (building and publishing events), :mod:`.presence` (who watches, across
processes), :mod:`.sending` (the channel-layer sends, off the caller's path).

May import: :mod:`botdialogs.conf`, :mod:`botdialogs.exceptions` and libraries (channels,
redis, Django). It sits below the storage so that the unit of work can publish.
"""

from botdialogs.monitor.events import (
    GROUP,
    KINDS,
    UpdateEvents,
    publish,
    publish_action,
    publish_error,
    publish_update,
)
from botdialogs.monitor.presence import watching

__all__ = [
    "GROUP",
    "KINDS",
    "UpdateEvents",
    "publish",
    "publish_action",
    "publish_error",
    "publish_update",
    "watching",
]
