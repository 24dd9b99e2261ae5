"""A Telegram payload for every row of botdialogs' update-type table, and the test bots' routers.

:func:`sample` builds, for one row of :data:`botdialogs.http.update_types.UPDATE_TYPES`, the
update Telegram would send from user ``user_id`` (in their private chat where the type has
one). ``every_type_router`` answers each routable type with a method in the webhook response
that names the type and says whether the handler saw FSM state; ``no_handlers_router`` has
no handler at all.
"""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.methods import SendMessage

from botdialogs.http.update_types import UNKNOWN_TYPE, Outcome

DATE = 1_700_000_000
BOT = {"id": 1, "is_bot": True, "first_name": "Bot"}


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Ann", "username": "ann"}


def _private(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": "Ann"}


def _message(user_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "message_id": 7,
        "date": DATE,
        "chat": _private(user_id),
        "from": _user(user_id),
        "text": "hi",
        **fields,
    }


def member_change(user_id: int, old: str, new: str) -> dict[str, Any]:
    """A ChatMemberUpdated of the bot in the user's private chat (a block is ``kicked``)."""
    return {
        "chat": _private(user_id),
        "from": _user(user_id),
        "date": DATE,
        "old_chat_member": _member(old, BOT),
        "new_chat_member": _member(new, BOT),
    }


def _member(status: str, user: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "user": user, **({"until_date": 0} if status == "kicked" else {})}


def _payload(kind: str, user_id: int) -> dict[str, Any]:
    user, chat = _user(user_id), _private(user_id)
    group = {"id": -100_000_000_000 - user_id, "type": "supergroup", "title": "Group"}
    channel = {"id": -200_000_000_000 - user_id, "type": "channel", "title": "Channel"}
    business = {"business_connection_id": "bc1"}
    boost = {
        "boost_id": "b1",
        "add_date": DATE,
        "expiration_date": DATE + 86400,
        "source": {"source": "gift_code", "user": user},
    }
    payloads: dict[str, Any] = {
        "message": _message(user_id),
        "edited_message": _message(user_id, edit_date=DATE + 1),
        "channel_post": {"message_id": 7, "date": DATE, "chat": channel, "text": "news"},
        "edited_channel_post": {
            "message_id": 7,
            "date": DATE,
            "chat": channel,
            "text": "news!",
            "edit_date": DATE + 1,
        },
        "business_connection": {
            "id": "bc1",
            "user": user,
            "user_chat_id": user_id,
            "date": DATE,
            "is_enabled": True,
        },
        "business_message": _message(user_id, **business),
        "edited_business_message": _message(user_id, edit_date=DATE + 1, **business),
        "deleted_business_messages": {**business, "chat": chat, "message_ids": [7]},
        "guest_message": _message(user_id),
        "message_reaction": {
            "chat": chat,
            "message_id": 7,
            "user": user,
            "date": DATE,
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": "👍"}],
        },
        "message_reaction_count": {
            "chat": channel,
            "message_id": 7,
            "date": DATE,
            "reactions": [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": 3}],
        },
        "inline_query": {"id": "iq1", "from": user, "query": "pizza", "offset": ""},
        "chosen_inline_result": {"result_id": "r1", "from": user, "query": "pizza"},
        "callback_query": {
            "id": "cq1",
            "from": user,
            "chat_instance": "ci1",
            "data": "nothing",
            "message": {"message_id": 7, "date": DATE, "chat": chat, "text": "menu"},
        },
        "shipping_query": {
            "id": "sq1",
            "from": user,
            "invoice_payload": "order-1",
            "shipping_address": {
                "country_code": "DE",
                "state": "",
                "city": "Berlin",
                "street_line1": "Street 1",
                "street_line2": "",
                "post_code": "10115",
            },
        },
        "pre_checkout_query": {
            "id": "pq1",
            "from": user,
            "currency": "XTR",
            "total_amount": 5,
            "invoice_payload": "order-1",
        },
        "purchased_paid_media": {"from": user, "paid_media_payload": "photo-1"},
        "poll": {
            "id": "p1",
            "question": "Pizza?",
            "options": [
                {"text": "Yes", "voter_count": 1, "persistent_id": "0"},
                {"text": "No", "voter_count": 0, "persistent_id": "1"},
            ],
            "total_voter_count": 1,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        },
        "poll_answer": {
            "poll_id": "p1",
            "user": user,
            "option_ids": [0],
            "option_persistent_ids": ["0"],
        },
        "my_chat_member": member_change(user_id, "member", "kicked"),
        "chat_member": {
            "chat": group,
            "from": user,
            "date": DATE,
            "old_chat_member": _member("left", _user(user_id + 1)),
            "new_chat_member": _member("member", _user(user_id + 1)),
        },
        "chat_join_request": {
            "chat": group,
            "from": user,
            "user_chat_id": user_id,
            "date": DATE,
        },
        "chat_boost": {"chat": channel, "boost": boost},
        "removed_chat_boost": {
            "chat": channel,
            "boost_id": "b1",
            "remove_date": DATE,
            "source": boost["source"],
        },
        "managed_bot": {"user": user, "bot_user": {**BOT, "id": 2}},
        "subscription": {"user": user, "invoice_payload": "plan-1", "state": "active"},
        "stopped_message_generation": {"chat": chat, "draft_id": 1},
        UNKNOWN_TYPE: {"something": "new"},
    }
    return payloads[kind]


def sample(kind: str, update_id: int, user_id: int) -> dict[str, Any]:
    """The update of type ``kind`` (a row of the table) from user ``user_id``."""
    field = "future_update_type" if kind == UNKNOWN_TYPE else kind
    return {"update_id": update_id, field: _payload(kind, user_id)}


def routed_text(kind: str, with_state: bool) -> str:
    """What ``every_type_router``'s handler answers for an update of type ``kind``."""
    return f"routed {kind}, state {'yes' if with_state else 'no'}"


def every_type_router() -> Router:
    """A handler for every type the table routes, each answering in the webhook response."""
    from botdialogs.http.update_types import UPDATE_TYPES

    router = Router(name="every_type")
    for row in UPDATE_TYPES:
        if row.outcome is not Outcome.RECORDED:
            router.observers[row.kind].register(_answer_for(row.kind))
    return router


def _answer_for(kind: str) -> Any:
    async def answer(event: Any, **data: Any) -> SendMessage:
        return SendMessage(chat_id=1, text=routed_text(kind, "state" in data))

    return answer


#: The two test bots (``tests.sites.update_types`` serves them), without their secret.
TEST_BOTS: dict[str, dict[str, Any]] = {
    "every_type": {"ROUTER": "tests.http.update_samples.every_type_router"},
    "no_handlers": {"ROUTER": "tests.http.update_samples.no_handlers_router"},
}


def no_handlers_router() -> Router:
    """A bot whose routers handle nothing: every update is only acknowledged and recorded."""
    return Router(name="no_handlers")
