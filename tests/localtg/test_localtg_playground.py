"""The chat playground's server side: its websocket under bad input, its pages, its files.

The websocket tests run project.asgi's real application (origin check, session, routing)
in this process with channels' WebsocketClient and the site's channel layer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from botdialogs.engine.bots import bot_token
from botdialogs.localtg import botapi, chats
from botdialogs.localtg.consumers import (
    CLOSE_FLOOD,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_BIG,
    FRAME_BURST,
    MAX_FRAME,
)
from botdialogs.localtg.models import LocalFile
from project.asgi import application
from tests.support.websockets import WebsocketClient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_channel_layers"),
]

ORIGIN = (b"origin", b"http://127.0.0.1")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005050200"
    "5fc8f1d20000000049454e44ae426082"
)


def socket(path: str) -> WebsocketClient:
    """A websocket to the site at ``path``, from a page of the site itself."""
    return WebsocketClient(application, path, headers=[ORIGIN])


@pytest.fixture
async def chat(thread_connections_closed: None) -> AsyncIterator[int]:
    """A chat of a simulated user with the demo bot (no update sent)."""
    await sync_to_async(chats.open_chat)("default", 7001, {"first_name": "Wes"})
    yield 7001


@pytest.fixture
async def connected(chat: int) -> AsyncIterator[WebsocketClient]:
    """An open websocket on :func:`chat`."""
    communicator = socket(f"/ws/localtg/default/{chat}/")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    yield communicator
    await communicator.disconnect()


async def sync(communicator: WebsocketClient, since: int = 0) -> dict[str, Any]:
    await communicator.send_to(text_data=json.dumps({"type": "sync", "since": since}))
    return json.loads(await communicator.receive_from(timeout=5))


def bot_sends(chat_id: int, text: str) -> dict[str, Any]:
    """The demo bot sends ``text`` through local Telegram's Bot API, in this process."""
    return botapi.call(bot_token("default"), "sendMessage", {"chat_id": chat_id, "text": text})


async def test_a_page_syncs_then_hears_changes_as_they_commit(
    connected: WebsocketClient, chat: int
) -> None:
    first = await sync(connected)
    assert (first["type"], first["cause"], first["revision"]) == ("changes", "sync", 0)
    assert first["messages"] == []

    await sync_to_async(bot_sends)(chat, "Hello")
    pushed = json.loads(await connected.receive_from(timeout=5))
    assert (pushed["type"], pushed["cause"]) == ("changes", "change")
    assert [m["text"] for m in pushed["messages"]] == ["Hello"]
    assert pushed["since"] == 0 and pushed["revision"] == 1

    # A later page asks from where it stands: only what is new.
    await sync_to_async(bot_sends)(chat, "Again")
    again = json.loads(await connected.receive_from(timeout=5))
    assert [m["text"] for m in again["messages"]] == ["Again"]
    assert (await sync(connected, since=2))["messages"] == []


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '"sync"',
        '{"type": "send", "text": "hi"}',
        '{"type": "sync", "since": "5"}',
        '{"type": "sync", "since": -1}',
        '{"type": "sync", "since": true}',
    ],
)
async def test_garbage_frames_get_an_error_and_the_socket_lives_on(
    connected: WebsocketClient, frame: str
) -> None:
    await connected.send_to(text_data=frame)
    answer = json.loads(await connected.receive_from(timeout=5))
    assert answer["type"] == "error" and answer["description"]
    assert (await sync(connected))["type"] == "changes"


async def test_binary_frames_get_an_error(connected: WebsocketClient) -> None:
    await connected.send_to(bytes_data=b"\x00\x01")
    assert json.loads(await connected.receive_from(timeout=5))["type"] == "error"


async def test_an_oversized_frame_closes_the_socket(connected: WebsocketClient) -> None:
    await connected.send_to(text_data=json.dumps({"type": "sync", "pad": "x" * MAX_FRAME}))
    assert await connected.closed_with() == CLOSE_TOO_BIG


async def test_a_flood_closes_the_socket(connected: WebsocketClient) -> None:
    for _ in range(int(FRAME_BURST) + 5):
        await connected.send_to(text_data="{}")
    assert await connected.closed_with(skip_frames=True) == CLOSE_FLOOD


@pytest.mark.parametrize("path", ["/ws/localtg/nobody/1/", "/ws/localtg/default/999/"])
async def test_an_unknown_bot_or_chat_closes_the_socket(
    path: str, thread_connections_closed: None
) -> None:
    communicator = socket(path)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert await communicator.closed_with() == CLOSE_NOT_FOUND


async def test_another_sites_page_cannot_connect(chat: int) -> None:
    communicator = WebsocketClient(
        application, f"/ws/localtg/default/{chat}/", headers=[(b"origin", b"http://evil.test")]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


def test_user_texts_over_4096_characters_are_refused_and_not_stored(client: Client) -> None:
    chats.open_chat("default", 7002, {"first_name": "Lou"})
    url = "/localtg/api/bots/default/chats/7002/messages/"
    answer = client.post(url, {"text": "y" * 4097}, content_type="application/json")
    assert answer.status_code == 400
    assert "at most 4096" in answer.json()["description"]
    assert chats.read_chat("default", 7002)["messages"] == []
    blank = client.post(url, {"text": "  "}, content_type="application/json")
    assert blank.status_code == 400


def test_bot_texts_over_4096_characters_are_refused_as_telegram_does() -> None:
    chats.open_chat("default", 7003, {"first_name": "Kim"})
    answer = bot_sends(7003, "z" * 4097)
    assert answer == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: message is too long",
    }
    assert bot_sends(7003, "z" * 4096)["ok"] is True


def test_the_start_page_makes_a_user_and_opens_the_chat(client: Client) -> None:
    page = client.get("/localtg/")
    assert page.status_code == 200
    assert b'<option value="default"' in page.content

    made = client.post(
        "/localtg/",
        {"bot": "default", "first_name": "<b>Bo</b>", "language_code": "de", "user_id": 7004},
    )
    assert made.status_code == 302 and made["Location"] == "/localtg/default/7004/"
    chat = chats.find_chat("default", 7004)
    assert (chat.first_name, chat.language_code) == ("<b>Bo</b>", "de")
    shown = client.get(made["Location"])
    assert shown.status_code == 200
    assert b"&lt;b&gt;Bo&lt;/b&gt;" in shown.content and b"<b>Bo</b>" not in shown.content

    refused = client.post("/localtg/", {"bot": "nobody", "first_name": " "})
    assert refused.status_code == 400
    assert b"Select a valid choice" in refused.content


def test_unknown_chats_and_bots_are_404_pages(client: Client) -> None:
    assert client.get("/localtg/default/123456/").status_code == 404
    assert client.get("/localtg/nobody/1/").status_code == 404


def upload(kind: str, name: str, content: bytes, mime: str) -> str:
    """The bot uploads a file; returns its file_id."""
    chats.open_chat("default", 7005, {"first_name": "Fay"})
    method = "sendPhoto" if kind == "photo" else "sendDocument"
    files = {"upload": SimpleUploadedFile(name, content, content_type=mime)}
    answer = botapi.call(
        bot_token("default"), method, {"chat_id": 7005, kind: "attach://upload"}, files
    )
    assert answer["ok"], answer
    if kind == "photo":
        return str(answer["result"]["photo"][0]["file_id"])
    return str(answer["result"]["document"]["file_id"])


def test_photos_are_served_as_images_by_their_bytes(client: Client) -> None:
    file_id = upload("photo", "dot.png", PNG, "application/octet-stream")
    response = client.get(f"/localtg/api/files/{file_id}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "Content-Disposition" not in response
    assert response.content == PNG
    listed = chats.read_chat("default", 7005)["messages"][0]["photo_file"]
    assert listed == {
        "file_id": file_id,
        "name": "dot.png",
        "mime_type": "application/octet-stream",
        "size": len(PNG),
        "kept": True,
    }


@pytest.mark.parametrize(("kind", "mime"), [("document", "text/html"), ("photo", "image/svg+xml")])
def test_html_and_svg_uploads_are_downloads_never_pages(
    client: Client, kind: str, mime: str
) -> None:
    hostile = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    file_id = upload(kind, "x.svg", hostile, mime)
    response = client.get(f"/localtg/api/files/{file_id}/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="x.svg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")


def test_files_over_the_cap_keep_no_bytes(client: Client, monkeypatch: Any) -> None:
    monkeypatch.setattr("botdialogs.localtg.files.MAX_KEPT_FILE_SIZE", 8)
    file_id = upload("document", "big.bin", b"123456789", "application/octet-stream")
    assert LocalFile.objects.get(file_id=file_id).content is None
    assert client.get(f"/localtg/api/files/{file_id}/").status_code == 404
    assert client.get("/localtg/api/files/no-such-file/").status_code == 404


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("press", {"data": "x", "message_id": "not a number"}),
        ("press", {}),
        ("messages", {"text": "hi", "first_name": "x" * 300}),
        ("messages", {"no text": True}),
    ],
)
def test_bad_user_api_bodies_are_400s(client: Client, action: str, body: dict[str, Any]) -> None:
    chats.open_chat("default", 7006, {"first_name": "Ben"})
    answer = client.post(
        f"/localtg/api/bots/default/chats/7006/{action}/", body, content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json()["ok"] is False and answer.json()["description"]
