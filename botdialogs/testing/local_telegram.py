"""The user side of local Telegram: a simulated user writes and presses buttons on a running
server and reads back what the bot shows (:class:`LocalTelegram`, :class:`LocalChatClient`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botdialogs.testing.processes import DEFAULT_TIMEOUT, wait_until


@dataclass(frozen=True)
class ChatMessage:
    """One message of a local chat, as the user sees it."""

    message_id: int
    from_bot: bool
    text: str
    caption: str
    buttons: list[list[str]]
    edit_count: int
    deleted: bool
    revision: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChatMessage:
        """Build from the chat API's message JSON."""
        return cls(
            message_id=data["message_id"],
            from_bot=data["from_bot"],
            text=data["text"],
            caption=data["caption"],
            buttons=data["buttons"],
            edit_count=data["edit_count"],
            deleted=data["deleted"],
            revision=data["revision"],
            raw=data,
        )


class LocalTelegramError(RuntimeError):
    """The local Telegram user API refused an action (no such button, unknown bot)."""


def _request(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=DEFAULT_TIMEOUT * 4) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise LocalTelegramError(f"{error.code}: {error.read().decode()}") from None
    return answer["result"]


class LocalTelegram:
    """The user side of local Telegram on a running server (``base_url`` like ``http://h:p``)."""

    def __init__(self, base_url: str, bot: str = "default") -> None:
        self.base_url = base_url.rstrip("/")
        self.bot = bot

    def api(self, path: str) -> str:
        """The URL of a user-API path of this bot."""
        return f"{self.base_url}/localtg/api/bots/{self.bot}/{path}"

    def chat(self, user_id: int, first_name: str = "Ann", **profile: str) -> LocalChatClient:
        """A simulated private chat with user ``user_id``."""
        return LocalChatClient(self, user_id, {"first_name": first_name, **profile})

    def open_chat(self, user_id: int, first_name: str = "Ann", **profile: str) -> LocalChatClient:
        """A chat the bot may write to first: the user exists and has not blocked the bot."""
        chat = self.chat(user_id, first_name, **profile)
        chat.block(False)
        return chat

    def call_bot_api(self, token: str, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
        """One Bot API call as a bot with ``token`` makes it, as JSON over HTTP: (HTTP
        status, the answer's body), a refusal included (its status is its error code)."""
        request = urllib.request.Request(
            f"{self.base_url}/localtg/bot{token}/{method}",
            data=json.dumps(params).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=DEFAULT_TIMEOUT * 2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def set_rate_limits(self, enabled: bool) -> None:
        """Make local Telegram answer 429 like Telegram's flood control (off by default)."""
        _request(self.api("rate-limits/"), {"enabled": enabled})

    def set_fault(self, kind: str | None, **spec: Any) -> dict[str, Any] | None:
        """Make the bot's Bot API calls fail: ``"server_error"``, ``"timeout"`` or ``"flood"``
        (``None`` clears it), for ``calls=n`` calls and/or ``seconds=s``, optionally only for
        ``methods=[...]``; ``status``, ``hang`` and ``retry_after`` shape the failure.

        Returns the fault as set (None when cleared); ``GET .../faults/`` shows it later, with
        ``calls_failed``, the calls it has failed so far.
        """
        result: dict[str, Any] | None = _request(self.api("faults/"), {"kind": kind, **spec})
        return result


class LocalChatClient:
    """One simulated user's chat with the bot: write, press, read."""

    def __init__(self, telegram: LocalTelegram, user_id: int, profile: dict[str, str]) -> None:
        self.telegram = telegram
        self.user_id = user_id
        self.profile = profile

    def _url(self, action: str) -> str:
        return self.telegram.api(f"chats/{self.user_id}/{action}/")

    def send(self, text: str) -> dict[str, Any]:
        """Write ``text`` as the user; returns once the webhook answered (with its status)."""
        return _request(self._url("messages"), {"text": text, **self.profile})

    def press(self, text: str | None = None, *, data: str | None = None) -> dict[str, Any]:
        """Press the newest inline button labelled ``text`` (or with callback ``data``)."""
        return _request(self._url("press"), {"text": text, "data": data})

    def pay(self, message_id: int | None = None) -> dict[str, Any]:
        """Press Pay on an invoice (default: the newest unpaid one); returns once paid or
        refused: ``{"paid", "charge_id", "error_message"}``."""
        return _request(self._url("pay"), {"message_id": message_id})

    def block(self, blocked: bool = True) -> int:
        """The user blocks (or unblocks) the bot; returns once the webhook answered the
        ``my_chat_member`` update, with its status (0: no change, nothing delivered)."""
        return int(_request(self._url("block"), {"blocked": blocked})["webhook_status"])

    def read(self, since: int = 0) -> dict[str, Any]:
        """The raw chat API answer: ``revision``, ``messages`` and ``callback_answers``."""
        return _request(f"{self._url('messages')}?since={since}")

    def messages(self) -> list[ChatMessage]:
        """Every message in the chat, oldest first (deleted ones included, flagged)."""
        return [ChatMessage.from_json(data) for data in self.read()["messages"]]

    def bot_messages(self) -> list[ChatMessage]:
        """What the bot shows now: its messages that are not deleted."""
        return [m for m in self.messages() if m.from_bot and not m.deleted]

    def last(self) -> ChatMessage | None:
        """The bot's newest visible message."""
        shown = self.bot_messages()
        return shown[-1] if shown else None

    def wait_for(
        self, predicate: Callable[[ChatMessage], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> ChatMessage:
        """The first visible bot message matching ``predicate``, polling until ``timeout``."""

        def found() -> ChatMessage | None:
            return next((m for m in self.bot_messages() if predicate(m)), None)

        return wait_until(found, timeout=timeout)

    def wait_for_text(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> ChatMessage:
        """The visible bot message whose text (or caption) is ``text``."""
        return self.wait_for(lambda m: text in (m.text, m.caption), timeout=timeout)
