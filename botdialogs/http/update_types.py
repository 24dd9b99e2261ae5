"""What botdialogs does with each kind of update Telegram delivers: one table, as data.

:data:`UPDATE_TYPES` has a row for every field of aiogram's ``Update`` and one for a type
aiogram does not know yet (a newer Bot API). The docs render it (the ``botdialogs-update-types``
directive of ``docs/_ext``) and a test delivers a sample of every row through the real
webhook, so the page, the code and the behaviour cannot drift apart.

Every accepted delivery answers 200 and records its ``update_id`` once, a redelivery is
acknowledged without running anything again, and then:

- :attr:`Outcome.ROUTED`: aiogram routes it to the bot's handlers, if its routers have one
  (``allowed_updates`` follows the routers, :func:`botdialogs.http.registration.allowed_updates`);
  without one it is acknowledged and recorded;
- :attr:`Outcome.USED`: botdialogs acts on it itself, whether or not a handler exists, and
  routes it too;
- :attr:`Outcome.RECORDED`: acknowledged and recorded only (a type aiogram cannot route).

:class:`Scope` says which unit of work the update runs in: that is what aiogram's FSM key
resolves for it (:mod:`botdialogs.engine.middleware`). In the chat scope the chat and user are
noted in ``TelegramChat``, and any update from the user there clears ``is_blocked``.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["RELIED_ON", "UNKNOWN_TYPE", "UPDATE_TYPES", "Outcome", "Scope", "UpdateType"]


class Outcome(enum.StrEnum):
    """What happens to an update of one type, beyond its 200 and its recorded id."""

    ROUTED = "routed to the bot's handlers"
    USED = "used by botdialogs, and routed"
    RECORDED = "acknowledged and recorded"


class Scope(enum.StrEnum):
    """The unit of work an update runs in."""

    #: Chat and user known: the chat's lock and state; the chat is noted in TelegramChat.
    CHAT = "chat"
    #: A user and no chat: the state of the user's private chat with the bot; nothing noted.
    USER = "user"
    #: Neither (or a chat with no user): a unit of work of its own, the update id only.
    NONE = "none"


class UpdateType(NamedTuple):
    """One row of the table: an ``Update`` field, its outcome, scope and the effect shown."""

    kind: str
    outcome: Outcome
    scope: Scope
    effect: str = ""


#: The name the table uses for a type that aiogram's ``Update`` has no field for.
UNKNOWN_TYPE = "(an unknown, newer type)"

_R, _U, _A = Outcome.ROUTED, Outcome.USED, Outcome.RECORDED
_CHAT, _USER, _NONE = Scope.CHAT, Scope.USER, Scope.NONE

UPDATE_TYPES: tuple[UpdateType, ...] = (
    UpdateType(
        "message",
        _R,
        _CHAT,
        "dialogs start and move on here; a successful_payment is recorded once (payments)",
    ),
    UpdateType("edited_message", _R, _CHAT),
    UpdateType("channel_post", _R, _NONE, "a channel has no user: no FSM state"),
    UpdateType("edited_channel_post", _R, _NONE),
    UpdateType("business_connection", _R, _USER),
    UpdateType("business_message", _R, _CHAT, "state keyed by the business connection too"),
    UpdateType("edited_business_message", _R, _CHAT),
    UpdateType("deleted_business_messages", _R, _NONE),
    UpdateType("guest_message", _R, _CHAT),
    UpdateType("message_reaction", _R, _CHAT, "an anonymous reaction (actor_chat) has no user"),
    UpdateType("message_reaction_count", _R, _NONE),
    UpdateType("inline_query", _R, _USER),
    UpdateType("chosen_inline_result", _R, _USER),
    UpdateType(
        "callback_query",
        _R,
        _CHAT,
        "aiogram_dialog's buttons; a button of a closed dialog is answered OLD_BUTTON_ANSWER",
    ),
    UpdateType("shipping_query", _R, _USER),
    UpdateType(
        "pre_checkout_query",
        _R,
        _USER,
        "with PAYMENT_PRE_CHECKOUT set, answered by that hook before any chat lock (payments)",
    ),
    UpdateType("purchased_paid_media", _R, _USER),
    UpdateType("poll", _R, _NONE),
    UpdateType("poll_answer", _R, _USER, "an anonymous vote (voter_chat) has a chat instead"),
    UpdateType(
        "my_chat_member",
        _U,
        _CHAT,
        "private chat, new status kicked: TelegramChat.is_blocked set; member: cleared",
    ),
    UpdateType("chat_member", _R, _CHAT, "the chat of a group, the admin who changed it"),
    UpdateType("chat_join_request", _R, _CHAT),
    UpdateType("chat_boost", _R, _NONE, "a premium boost names its user: chat scope then"),
    UpdateType("removed_chat_boost", _R, _NONE),
    UpdateType("managed_bot", _R, _USER),
    UpdateType("subscription", _R, _USER),
    UpdateType("stopped_message_generation", _R, _NONE),
    UpdateType(UNKNOWN_TYPE, _A, _NONE, "aiogram warns; nothing is routed"),
)

#: Update types botdialogs itself needs delivered, whatever the bot's routers handle:
#: without ``my_chat_member`` a bot learns of a block only from a failed send (403).
RELIED_ON: tuple[str, ...] = tuple(row.kind for row in UPDATE_TYPES if row.outcome is _U)
