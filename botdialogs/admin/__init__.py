"""botdialogs admin: inspection and repair of stored dialogs, and background work.

Owns: the stored-state pages (chats in :mod:`.chats`, dialog stacks and contexts in
:mod:`.dialogs`, FSM records in :mod:`.fsm`, what they share in :mod:`.storage`), background
actions and broadcasts (:mod:`.background`), dialog timers (:mod:`.timers`),
Stars payments and refunds (:mod:`.payments`), list pages that
stay fast on big tables (:mod:`.big_tables`) and repairs under the chat lock
(:mod:`.repair`). May import
everything below it (timers, background, engine, storage, core); nothing imports it but
Django's admin autodiscovery.
"""

from botdialogs.admin import background, chats, dialogs, fsm, nodes, payments, timers

__all__ = ["background", "chats", "dialogs", "fsm", "nodes", "payments", "timers"]
