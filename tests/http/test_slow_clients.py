"""Slow and stuck clients against a real uvicorn: the webhook body has a deadline.

Slowloris sockets send their headers and one byte of a 500-byte body, one more sends all but
the last byte; meanwhile ordinary deliveries are answered. Past ``WEBHOOK_BODY_TIMEOUT`` each
slow socket gets 408 and is closed, and nothing it sent was processed.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from botdialogs.models import ProcessedUpdate
from botdialogs.testing import AsgiServer, message_update
from botdialogs.testing.databases import wait_for_quiet_database
from tests.support.servers import APP, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)
SLOW_SOCKETS = 50
BODY_SIZE = 500


@pytest.fixture(scope="module")
def slow_clients_server(test_db_env: dict[str, str]) -> Iterator[AsgiServer]:
    env = {
        **test_db_env,
        "BOT_MODE": "inline",
        "DJANGO_SETTINGS_MODULE": "tests.sites.slow_clients",
    }
    with AsgiServer(APP, env=env) as server:
        yield server


@pytest.fixture
def server(transactional_db: None, slow_clients_server: AsgiServer) -> Iterator[AsgiServer]:
    yield slow_clients_server
    wait_for_quiet_database()


def padded(update: dict[str, Any]) -> bytes:
    """The update as JSON of exactly BODY_SIZE bytes."""
    body = json.dumps({**update, "pad": ""}).encode()
    return json.dumps({**update, "pad": "x" * (BODY_SIZE - len(body))}).encode()


def request_head(server: AsgiServer, length: int) -> bytes:
    return (
        f"POST /bots/default/webhook/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        f"X-Telegram-Bot-Api-Secret-Token: {WEBHOOK_SECRET}\r\n\r\n"
    ).encode()


def open_slow(server: AsgiServer, sent: bytes) -> socket.socket:
    """A socket that sent the headers of a BODY_SIZE body and then only ``sent``."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(request_head(server, BODY_SIZE) + sent)
    return sock


def answer_and_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return received


def deliver(server: AsgiServer, update: dict[str, Any]) -> bytes:
    """One ordinary delivery on its own connection; the response's status line."""
    body = json.dumps(update).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request_head(server, len(body)) + body)
        return sock.makefile("rb").readline()


def test_slow_bodies_get_408_and_nothing_processed_while_others_are_served(
    server: AsgiServer,
) -> None:
    slow_updates = [message_update(9300 + n, "/start") for n in range(SLOW_SOCKETS + 1)]
    bodies = [padded(update) for update in slow_updates]
    slow = [open_slow(server, body[:1]) for body in bodies[:SLOW_SOCKETS]]
    stuck = open_slow(server, bodies[-1][:-1])  # stops one byte before the end

    ordinary = [message_update(9400 + n, "/start") for n in range(3)]
    for update in ordinary:
        assert deliver(server, update).startswith(b"HTTP/1.1 200 ")

    for sock in [*slow, stuck]:
        answer = answer_and_close(sock)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"WEBHOOK_BODY_TIMEOUT" in answer
    done = set(ProcessedUpdate.objects.values_list("update_id", flat=True))
    assert done == {update["update_id"] for update in ordinary}


def test_a_body_sent_whole_in_slow_pieces_within_the_deadline_is_served(
    server: AsgiServer,
) -> None:
    update = message_update(9500, "/start")
    body = padded(update)
    sock = open_slow(server, body[:100])
    for start in range(100, BODY_SIZE, 100):
        sock.sendall(body[start : start + 100])
    assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 200 ")
    sock.close()
    assert ProcessedUpdate.objects.filter(update_id=update["update_id"]).count() == 1
