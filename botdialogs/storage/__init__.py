"""DjangoStorage: aiogram's FSM storage on Django models, one transaction per update.

Owns the dialog state: :mod:`.storage` (the ``BaseStorage``), :mod:`.unit_of_work` (one
update of one chat), :mod:`.snapshot` (a chat's reads on a plain Dispatcher), :mod:`.claims`
(the base of the ids that commit with the state), :mod:`.rows` (row kinds, keys and data to
columns), :mod:`.database` (the backends' role), :mod:`.postgres` and :mod:`.orm` (the
backends), :mod:`.connections` (PostgreSQL connections of our own), :mod:`.isolation` (chat
locks), :mod:`.jsonvalues` (what JSON columns can hold), :mod:`.cleanup` (expired rows).

May import: :mod:`botdialogs.models`, :mod:`botdialogs.conf`, :mod:`botdialogs.exceptions`,
:mod:`botdialogs.monitor`. Nothing above it (engine, http, background, timers, nodes,
admin) and no optional app: an import contract checks it.
"""

from botdialogs.storage.claims import AlreadyProcessed, Claim, ClaimOutcome
from botdialogs.storage.database import ExtraWrite
from botdialogs.storage.storage import DjangoStorage
from botdialogs.storage.unit_of_work import UnitOfWork

__all__ = [
    "AlreadyProcessed",
    "Claim",
    "ClaimOutcome",
    "DjangoStorage",
    "ExtraWrite",
    "UnitOfWork",
]
