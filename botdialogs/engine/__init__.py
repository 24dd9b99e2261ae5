"""The engine glue: aiogram and aiogram_dialog running inside Django, across processes.

Owns: the Bot and Dispatcher registry (:mod:`.bots`), the FSM middleware that opens each
update's unit of work with the claim from the event data (:mod:`.middleware`), the
recovery handlers (:mod:`.recovery`), which task handles an update
(:mod:`.update_context`), the Bot API session (:mod:`.session`), aiogram_dialog's intent
ids (:mod:`.intent_ids`), the one sync-to-async crossing (:mod:`.sync`) and where local
bots find their Bot API (:mod:`.local_api`).

May import: :mod:`botdialogs.storage`, :mod:`botdialogs.conf`, :mod:`botdialogs.models`,
:mod:`botdialogs.exceptions`. Never ``botdialogs.http``, ``.background``, ``.admin`` or the
optional apps.
"""

from botdialogs.engine.bots import bot_id, bot_scope, get_bot, get_dispatcher, get_storage
from botdialogs.engine.sync import call_async

__all__ = ["bot_id", "bot_scope", "call_async", "get_bot", "get_dispatcher", "get_storage"]
