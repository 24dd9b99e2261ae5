"""Processes of the benchmarks: start a server and wait for its port; read CPU and memory
of processes from ``/proc`` (Linux).

CPU of the database servers is whole-server: every ``postgres`` process (and, through the
postmaster's ``cutime``/``cstime``, the backends that already exited: one per Django request
opens and closes its own), or every ``redis-server``. Other clients of the same servers add
to it, so the suites measure an idle baseline next to each run and subtract it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from botdialogs.testing import ListeningProcess, free_port

__all__ = ["Service", "cpu_seconds", "free_port", "machine", "peak_rss_kib", "server_cpu_seconds"]

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Service(ListeningProcess):
    """A server subprocess (``python -m …``) that is ready once its port accepts connections."""

    def __init__(self, args: Sequence[str], port: int, env: Mapping[str, str] | None = None):
        command = [sys.executable, *args]
        super().__init__(command, env if env is not None else os.environ, port, cwd=ROOT)

    def start(self) -> Service:  # type: ignore[override]
        """Start the process and return it once it accepts connections."""
        super().start()
        return self

    def __enter__(self) -> Service:
        return self.start()


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
