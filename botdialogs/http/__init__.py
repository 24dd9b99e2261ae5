"""The webhook: HTTP in, one update processed exactly once, HTTP out.

One update's path, top to bottom: the lean ASGI route (:mod:`.asgi`, or the Django view
:mod:`.views`; both thin) → :mod:`.webhook` (checks, then ``feed_update`` with the update's
claim, :mod:`.claims`) → :mod:`botdialogs.engine.middleware` (opens the chat's unit of work
with that claim) → :mod:`botdialogs.storage.unit_of_work` → the storage backend
(:mod:`botdialogs.storage.postgres` or :mod:`botdialogs.storage.orm`). Also: the ASGI
lifespan (:mod:`.lifespan`: the in-process timer firer) and registering the webhook with
Telegram (:mod:`.registration`).

May import: :mod:`botdialogs.engine`, :mod:`botdialogs.storage`, :mod:`botdialogs.task_queue`,
:mod:`botdialogs.timers` and the core modules. Never ``botdialogs.admin`` or the optional
apps.
"""

from botdialogs.http.asgi import WebhookRoute
from botdialogs.http.lifespan import Lifespan
from botdialogs.http.webhook import Delivery, handle_delivery, process_update

__all__ = ["Delivery", "Lifespan", "WebhookRoute", "handle_delivery", "process_update"]
