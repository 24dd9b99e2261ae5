"""Processes of the benchmarks: start a server and wait for its port; read CPU and memory
of processes from ``/proc`` (Linux).

CPU of the database servers is whole-server: every ``postgres`` process (and, through the
postmaster's ``cutime``/``cstime``, the backends that already exited: one per Django request
opens and closes its own), or every ``redis-server``. Other clients of the same servers add
to it, so the suites measure an idle baseline next to each run and subtract it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    """A server subprocess (``python -m …``) that is ready once its port accepts connections."""

    def __init__(self, args: Sequence[str], port: int, env: Mapping[str, str] | None = None):
        self.command = [sys.executable, *args]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = dict(env if env is not None else os.environ)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log")  # noqa: SIM115

    @property
    def pid(self) -> int:
        """The server's process id (uvicorn and aiohttp serve in that process)."""
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> Service:
        """Start the process and return once it accepts connections."""
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{' '.join(self.command)} exited:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"{self.command} not listening after {timeout}s") from None
                time.sleep(0.05)

    def output(self) -> str:
        """What the process printed so far (for error messages)."""
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        return stat.read().rpartition(")")[2].split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its exited, reaped children)."""
    fields = _stat(pid)  # fields[0] is field 3 of proc(5): utime is [11], stime [12]
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def _processes(name: str) -> dict[int, int]:
    """pid -> parent pid of every process whose command name is ``name``."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry.path, "comm").read_text().strip() == name:
                found[int(entry.name)] = int(_stat(int(entry.name))[1])
        except (OSError, IndexError):
            continue  # exited while we looked
    return found


def server_cpu_seconds(name: str) -> float:
    """CPU seconds used so far by all processes named ``name`` ("postgres", "redis-server"),
    including their exited children (PostgreSQL backends of closed connections)."""
    total = 0.0
    processes = _processes(name)
    for pid, parent in processes.items():
        try:
            # A top process's reaped children count too; a child's own children do not exist.
            total += cpu_seconds(pid, children=parent not in processes)
        except (OSError, IndexError):
            continue
    return total


def machine() -> dict[str, str]:
    """Cores, memory and CPU model of this machine."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "cpu": model,
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
    }
