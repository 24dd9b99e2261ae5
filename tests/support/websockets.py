"""A websocket client of an ASGI application in this process, for the consumers' tests.

channels.testing has one, but importing it needs daphne (for its live server), which this
project does not install (it serves with uvicorn). This client also does what an ASGI server
does once a socket is closed: it tells the application ``websocket.disconnect`` and waits
for it to finish, so no consumer is left running (and receiving from the channel layer)
when the test's event loop closes.
"""

from __future__ import annotations

from typing import Any

from asgiref.testing import ApplicationCommunicator


class WebsocketClient(ApplicationCommunicator):
    """One websocket to ``app`` at ``path``, with request ``headers`` (origin, cookie)."""

    def __init__(
        self,
        app: Any,
        path: str,
        headers: list[tuple[bytes, bytes]],
        query_string: bytes = b"",
    ) -> None:
        scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query_string,
            "headers": headers,
            "subprotocols": [],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        super().__init__(app, scope)

    async def connect(self, timeout: float = 5) -> tuple[bool, Any]:
        """Open the socket: (True, subprotocol), or (False, close code) when refused."""
        await self.send_input({"type": "websocket.connect"})
        output = await self.receive_output(timeout)
        if output["type"] == "websocket.close":
            await self._finish(timeout)
            return False, output.get("code", 1000)
        return True, output.get("subprotocol")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One frame to the server."""
        frame: dict[str, Any] = {"type": "websocket.receive"}
        if text_data is not None:
            frame["text"] = text_data
        if bytes_data is not None:
            frame["bytes"] = bytes_data
        await self.send_input(frame)

    async def receive_from(self, timeout: float = 5) -> str:
        """The next text frame from the server."""
        output = await self.receive_output(timeout)
        assert output["type"] == "websocket.send", output
        return str(output["text"])

    async def closed_with(self, timeout: float = 5, *, skip_frames: bool = False) -> int:
        """The code the server closed the socket with (the next output must be the close,
        unless ``skip_frames``: then frames before it are passed over)."""
        while True:
            output = await self.receive_output(timeout)
            if output["type"] == "websocket.close" or not skip_frames:
                break
        assert output["type"] == "websocket.close", output
        await self._finish(timeout)
        return int(output.get("code", 1000))

    async def disconnect(self, code: int = 1000, timeout: float = 5) -> None:
        """Close from the client side (unless the application ended) and let it finish."""
        if not self.future.done():
            await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)

    async def _finish(self, timeout: float) -> None:
        # The server closed the socket: the application hears the disconnect and ends.
        if not self.future.done():
            await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(timeout)
