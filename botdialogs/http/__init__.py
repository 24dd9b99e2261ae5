"""The webhook: HTTP in, one update processed exactly once, HTTP out.

Owns: the lean ASGI route (:mod:`.asgi`) and the Django view (:mod:`.views`), both thin;
accepting a delivery and processing it exactly once (:mod:`.delivery`); registering the
webhook with Telegram (:mod:`.registration`). One update's path, top to bottom:
:mod:`.asgi` → :mod:`.delivery` → :mod:`botdialogs.engine.middleware` →
:mod:`botdialogs.storage.unit_of_work` → :mod:`botdialogs.storage.postgres`.

May import: :mod:`botdialogs.engine`, :mod:`botdialogs.storage`, :mod:`botdialogs.task_queue`
and the core modules. Never ``botdialogs.background``, ``.admin`` or the optional apps.
"""

from botdialogs.http.asgi import WebhookRoute
from botdialogs.http.delivery import Delivery, handle_delivery, process_update

__all__ = ["Delivery", "WebhookRoute", "handle_delivery", "process_update"]
