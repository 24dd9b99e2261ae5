"""Delivering updates to a webhook the way Telegram does: again and again until a 2xx.

Telegram keeps an update and posts it again (same ``update_id``) while the webhook answers
anything but 2xx or does not answer at all; a 4xx is a bug on our side here, so it stops the
delivery. Every attempt is recorded with its time and outcome, so a test can tell what the
webhook answered while PostgreSQL was down or right after the server was killed.
(Build the updates with :mod:`botdialogs.testing.updates`.)
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class Attempt:
    """One POST of an update: when it went out and came back, and the answer.

    ``status`` is None when no HTTP answer came (refused, reset, timed out): ``error`` says
    which.
    """

    update_id: int
    url: str
    started: float
    ended: float
    status: int | None
    error: str = ""

    @property
    def accepted(self) -> bool:
        """A 2xx: Telegram would forget the update."""
        return self.status is not None and 200 <= self.status < 300


class DeliveryFailed(AssertionError):
    """An update was refused with a 4xx, or not accepted before its deadline."""


def post_update(url: str, update: dict[str, Any], secret: str, timeout: float = 30.0) -> Attempt:
    """POST ``update`` once to ``url``; never raises for a network failure."""
    parts = urlsplit(url)
    body = json.dumps(update).encode()
    headers = {"Content-Type": "application/json", SECRET_HEADER: secret}
    started = time.monotonic()
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout
    )
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        status, error = response.status, ""
    except (OSError, http.client.HTTPException) as failure:
        status, error = None, f"{type(failure).__name__}: {failure}"
    finally:
        connection.close()
    return Attempt(update["update_id"], url, started, time.monotonic(), status, error)


class Telegram:
    """Posts updates like Telegram and keeps every attempt (thread-safe).

    Between two attempts of one update it waits ``retry_delay``, doubled after each failure
    up to ``max_retry_delay`` (Telegram backs off too, more slowly than tests need);
    ``deadline`` bounds the attempts of one update. ``before_attempt`` is called before each
    attempt (a test may hold deliveries there while it restarts a service).
    """

    def __init__(
        self,
        secret: str,
        deadline: float = 90.0,
        retry_delay: float = 0.05,
        max_retry_delay: float = 0.4,
        timeout: float = 30.0,
        before_attempt: Callable[[], None] | None = None,
    ) -> None:
        self.secret = secret
        self.deadline = deadline
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.timeout = timeout
        self.before_attempt = before_attempt
        self.attempts: list[Attempt] = []
        self.in_flight = 0
        self.changed = threading.Condition()

    def post_once(self, url: str, update: dict[str, Any]) -> Attempt:
        """One attempt, recorded."""
        if self.before_attempt is not None:
            self.before_attempt()
        with self.changed:
            self.in_flight += 1
        try:
            attempt = post_update(url, update, self.secret, self.timeout)
        finally:
            with self.changed:
                self.in_flight -= 1
                self.changed.notify_all()
        with self.changed:
            self.attempts.append(attempt)
            self.changed.notify_all()
        return attempt

    def deliver(self, url: str | Callable[[], str], update: dict[str, Any]) -> Attempt:
        """Post ``update`` until it is accepted; returns the accepting attempt.

        ``url`` may be a callable: each attempt asks it where to post (another web process
        may take the redelivery). Raises DeliveryFailed on a 4xx or at the deadline.
        """
        give_up = time.monotonic() + self.deadline
        delay = self.retry_delay
        while True:
            attempt = self.post_once(url() if callable(url) else url, update)
            if attempt.accepted:
                return attempt
            if attempt.status is not None and 400 <= attempt.status < 500:
                raise DeliveryFailed(f"Update {update['update_id']} refused: {attempt}")
            if time.monotonic() > give_up:
                raise DeliveryFailed(
                    f"Update {update['update_id']} not accepted within {self.deadline}s: "
                    f"last attempt {attempt}"
                )
            time.sleep(delay)  # Telegram's back-off between redeliveries
            delay = min(delay * 2, self.max_retry_delay)

    def accepted_count(self) -> int:
        """How many attempts were accepted so far."""
        with self.changed:
            return sum(attempt.accepted for attempt in self.attempts)

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        """Block until ``condition()`` (checked under the lock) holds after an attempt ends."""
        with self.changed:
            if not self.changed.wait_for(condition, timeout=timeout):
                raise TimeoutError(f"Deliveries did not reach {condition!r} within {timeout}s")

    def retried(self) -> int:
        """Attempts that were not accepted (each one meant a redelivery)."""
        with self.changed:
            return sum(not attempt.accepted for attempt in self.attempts)
