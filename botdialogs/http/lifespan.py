"""The ASGI lifespan of a botdialogs site: what the web process runs beside its requests.

With no broker (Celery eager: the embedded defaults) nothing runs beat, so dialog timers are
fired in the web process (``BOTDIALOGS['TIMERS_IN_PROCESS']``, "auto" by default). The
firer starts on ``lifespan.startup``, on the server's event loop, and stops on
``lifespan.shutdown``: the server's own start and stop, not the first request.

uvicorn and hypercorn send the lifespan scope (uvicorn's ``--lifespan auto``, its default,
uses it when the application answers it); Django's ASGI handler refuses it, so a site routes
it here: :class:`botdialogs.http.asgi.WebhookRoute` does when it is the whole application,
and channels' ``ProtocolTypeRouter`` takes ``"lifespan": Lifespan()``. A server without
lifespan support (daphne) fires no timers in process: run beat there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.dispatch import receiver

from botdialogs.conf import get_settings

logger = logging.getLogger("botdialogs.timers")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Lifespan:
    """ASGI application for the ``lifespan`` scope: starts and stops the timer firer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the server's startup and shutdown messages."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await startup()
                except Exception as error:
                    logger.exception("botdialogs could not start")
                    await send({"type": "lifespan.startup.failed", "message": repr(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def firer_wanted() -> bool:
    """Whether this process should fire dialog timers itself (``TIMERS_IN_PROCESS``)."""
    from botdialogs.task_queue import runs_in_process

    wanted = get_settings().timers_in_process  # "auto", True or False
    return wanted is True or (wanted == "auto" and await sync_to_async(runs_in_process)())


async def startup() -> None:
    """Start the in-process timer firer on this loop when the settings want one."""
    from botdialogs.timers.firing import start_in_process

    if await firer_wanted():
        start_in_process()


#: Whether this process has looked for its timer firer (at its first webhook delivery).
_looked_for_firer = False


async def warn_without_firer() -> None:
    """Once per process, at its first webhook delivery: warn when dialog timers should fire
    in this process and no lifespan startup started the firer.

    What can be told for sure only then: Django's settings do not name the ASGI application
    a server runs, and an application that never routes the lifespan scope here (a plain
    ``get_asgi_application()``, a ``ProtocolTypeRouter`` without ``"lifespan"``, daphne)
    is only seen by the firer that never started. With lifespan, startup comes before any
    request, so a firer missing at the first delivery is missing for good.
    """
    global _looked_for_firer
    if _looked_for_firer:
        return
    _looked_for_firer = True
    from botdialogs.timers.firing import running_in_process

    if not running_in_process() and await firer_wanted():
        logger.warning(
            "Dialog timers will not fire: they run in this process (no broker, "
            "TIMERS_IN_PROCESS=%r) but the ASGI lifespan never started botdialogs' firer. "
            "Serve botdialogs.http.asgi.WebhookRoute as the whole application, or route "
            '"lifespan": botdialogs.http.Lifespan() in ProtocolTypeRouter, on uvicorn or '
            "hypercorn; or run Celery beat with a broker",
            get_settings().timers_in_process,
        )


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    # Other settings may want a firer (or none): look again at the next delivery.
    global _looked_for_firer
    if setting in ("BOTDIALOGS", "CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL"):
        _looked_for_firer = False


async def shutdown() -> None:
    """Stop this loop's timer firer.

    A firing cut short rolls back (its claim is not committed): its timer is claimed again
    when the lease runs out, and fired once.
    """
    from botdialogs.timers.firing import stop_in_process

    await stop_in_process()
