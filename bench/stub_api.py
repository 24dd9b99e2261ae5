"""A minimal, fast stand-in for the Telegram Bot API, for the webhook benchmark.

Answers ``POST .../bot<token>/<method>`` (any prefix, so both aiogram's
``TelegramAPIServer.from_base(url)`` and botdialogs' local-Telegram address ``<url>/localtg``
reach it) with valid minimal JSON: a message (message_id, chat, date, text, reply_markup)
for sendMessage and editMessageText, ``true`` for everything else. It keeps the last
message of each chat, which the load generator reads to find the buttons to press:

- ``GET /_chats/<chat_id>``: ``{"message_id", "text", "reply_markup"}`` of the chat's last
  message, 404 if the bot never wrote there;
- ``GET /_calls``: how many calls of each method it answered.

    python -m bench.stub_api --port 8765
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from typing import Any

from aiohttp import web

API_PATH = re.compile(r".*/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")
MESSAGE_METHODS = {"sendmessage", "editmessagetext", "editmessagereplymarkup"}


class StubBotApi:
    """The stub's state: a message id counter and the last message of each chat."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.last: dict[int, dict[str, Any]] = {}
        self.next_message_id = 1000

    async def api(self, request: web.Request) -> web.Response:
        """One Bot API call."""
        match = API_PATH.match(request.path)
        if match is None:
            return web.json_response({"ok": False, "description": "Not Found"}, status=404)
        method = match["method"].lower()
        self.calls[method] += 1
        fields: dict[str, Any] = dict(await request.post())
        if not fields and request.content_type == "application/json":
            fields = await request.json()
        if method in MESSAGE_METHODS:
            return _ok(self._message(method, fields))
        if method == "getme":
            user = {"id": int(match["token"].split(":")[0]), "is_bot": True, "first_name": "Bot"}
            return _ok(user)
        return _ok(True)

    def _message(self, method: str, fields: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(fields["chat_id"])
        previous = self.last.get(chat_id, {})
        if method == "sendmessage" or "message_id" not in fields:
            self.next_message_id += 1
            message_id = self.next_message_id
        else:
            message_id = int(fields["message_id"])
        markup = fields.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        text = fields.get("text", previous.get("text", ""))
        self.last[chat_id] = {"message_id": message_id, "text": text, "reply_markup": markup}
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "text": text,
        }
        if markup:
            message["reply_markup"] = markup
        return message

    async def chat(self, request: web.Request) -> web.Response:
        """The last message the bot left in a chat."""
        last = self.last.get(int(request.match_info["chat_id"]))
        if last is None:
            return web.json_response({}, status=404)
        return web.json_response(last)

    async def call_counts(self, request: web.Request) -> web.Response:
        """Calls answered, per method."""
        return web.json_response(dict(self.calls))


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def build_app() -> web.Application:
    """The stub as an aiohttp application."""
    stub = StubBotApi()
    app = web.Application()
    app.router.add_get("/_chats/{chat_id}", stub.chat)
    app.router.add_get("/_calls", stub.call_counts)
    app.router.add_post("/{path:.*}", stub.api)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
