"""DjangoStorage: aiogram's FSM storage on Django models, one transaction per update.

Owns the dialog state: :mod:`.storage` (the ``BaseStorage``), :mod:`.unit_of_work` (one
update of one chat), :mod:`.claims` (ids that commit with the state), :mod:`.rows` (keys and
data to columns), :mod:`.database` (the engines' role), :mod:`.postgres` and :mod:`.orm`
(the engines), :mod:`.connections` (PostgreSQL connections of our own),
:mod:`.isolation` (chat locks), :mod:`.jsonvalues` (what JSON columns can hold),
:mod:`.cleanup` (expired rows).

May import: :mod:`botdialogs.models`, :mod:`botdialogs.conf`, :mod:`botdialogs.exceptions`.
Nothing above it (engine, http, background, admin) and no optional app.
"""

from botdialogs.storage.claims import (
    ActionClaim,
    AlreadyProcessed,
    Claim,
    TimerClaim,
    UpdateClaim,
    claiming,
)
from botdialogs.storage.database import ExtraWrite
from botdialogs.storage.rows import CONTEXT_PREFIX, STACK_PREFIX, chat_scope, to_json
from botdialogs.storage.storage import DjangoStorage, UnitOfWorkIsolation
from botdialogs.storage.unit_of_work import UnitOfWork

__all__ = [
    "CONTEXT_PREFIX",
    "STACK_PREFIX",
    "ActionClaim",
    "AlreadyProcessed",
    "Claim",
    "DjangoStorage",
    "ExtraWrite",
    "TimerClaim",
    "UnitOfWork",
    "UnitOfWorkIsolation",
    "UpdateClaim",
    "chat_scope",
    "claiming",
    "to_json",
]
