"""Files bots send: a ``file_id`` given as is, or minted for an upload whose bytes are kept
(up to a cap) so the chat playground can show them."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from botdialogs.localtg.errors import BotApiError
from botdialogs.localtg.models import LocalFile

#: Uploads up to this size keep their bytes, so the chat playground can show them.
MAX_KEPT_FILE_SIZE = 10 * 1024 * 1024


def file_id_of(params: Mapping[str, Any], key: str, files: Mapping[str, Any]) -> str:
    """A file_id for ``params[key]``: given as is, or minted for an upload."""
    value = params.get(key)
    if not value:
        raise BotApiError(400, f"Bad Request: there is no {key} in the request")
    value = str(value)
    if not value.startswith("attach://"):
        return value
    upload = files.get(value.removeprefix("attach://"))
    if upload is None:
        raise BotApiError(400, f"Bad Request: wrong file identifier for {key}")
    file_id = f"local-{key}-{secrets.token_urlsafe(18)}"
    size = getattr(upload, "size", 0) or 0
    LocalFile.objects.create(
        file_id=file_id,
        file_unique_id=file_id[-16:],
        kind=key,
        file_name=getattr(upload, "name", "") or "",
        mime_type=getattr(upload, "content_type", "") or "",
        size=size,
        content=_kept_bytes(upload, size),
    )
    return file_id


def _kept_bytes(upload: Any, size: int) -> bytes | None:
    """The upload's bytes when they are small enough to keep in the database."""
    if size > MAX_KEPT_FILE_SIZE or not hasattr(upload, "read"):
        return None
    if hasattr(upload, "seek"):
        upload.seek(0)
    content = upload.read(MAX_KEPT_FILE_SIZE + 1)
    return bytes(content) if len(content) <= MAX_KEPT_FILE_SIZE else None
