"""Chat revisions: how a chat page learns that something changed.

Every change to a chat's messages takes the chat's next revision (inside the transaction
that makes the change, with the chat row locked) and stamps the changed message with it.
A page polls ``GET .../messages/?since=<revision>`` and gets only what changed.
"""

from __future__ import annotations

from botdialogs.localtg.models import LocalChat


def bump(chat: LocalChat) -> int:
    """Give ``chat`` (locked by the caller's transaction) its next revision and return it."""
    chat.revision += 1
    chat.save(update_fields=["revision"])
    return chat.revision
