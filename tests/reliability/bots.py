"""The ``gate`` bot of the worker-kill tests (``steps`` is
:func:`botdialogs.testing.bots.steps_router`).

``gate``: like ``steps``, but "gate" first leaves a marker file and then waits for the test to open
the gate, so a test can kill the process handling it at a known moment.
(``RELIABILITY_GATE_DIR``: the folder of the markers.)
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from botdialogs.testing.bots import append_step

GATE_DIR_VARIABLE = "RELIABILITY_GATE_DIR"
#: A gate nobody opens fails the handler instead of holding a worker forever.
GATE_TIMEOUT = 300.0


def entered_markers(folder: Path) -> list[Path]:
    """The markers left by handlers that reached the gate, oldest first."""
    return sorted(folder.glob("entered-*"), key=lambda path: path.stat().st_mtime_ns)


def marker_pid(marker: Path) -> int:
    """The process id of the handler that left ``marker``."""
    return int(marker.name.split("-")[1])


def open_gate(folder: Path) -> None:
    """Let every handler waiting at the gate (now or later) go on."""
    (folder / "open").touch()


def gate_router() -> Router:
    """A router whose "gate" message waits for :func:`open_gate` before recording step 1."""
    router = Router(name="gate")

    @router.message(F.text == "gate")
    async def wait_at_gate(message: Message, state: FSMContext) -> None:
        """Leave a marker, wait for the gate to open, then record step 1."""
        folder = Path(os.environ[GATE_DIR_VARIABLE])
        (folder / f"entered-{os.getpid()}-{time.monotonic_ns()}").touch()
        deadline = time.monotonic() + GATE_TIMEOUT
        while not (folder / "open").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("Nobody opened the gate")
            await asyncio.sleep(0.02)
        await append_step(state, 1)

    return router
