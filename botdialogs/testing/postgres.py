"""A PostgreSQL server of the tests' own, which they may stop and start at will, and
PgBouncer in front of it.

The machine's shared server must never be stopped (other runs use it); these live in a
temporary folder, listen on a free port of 127.0.0.1 and go away with ``cleanup()``.
PostgreSQL and PgBouncer refuse to run as root: as root, they run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg

from botdialogs.testing.processes import ListeningProcess, free_port

SERVER_USER = "postgres"


def postgres_bin() -> Path:
    """The folder of ``initdb`` and ``pg_ctl`` (the newest installed major version)."""
    explicit = os.environ.get("POSTGRES_BIN")
    if explicit:
        return Path(explicit)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise FileNotFoundError("initdb not found (install PostgreSQL or set POSTGRES_BIN)")


def as_server_user() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to the ``postgres`` user (nothing otherwise)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(SERVER_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def hand_over(path: Path) -> None:
    """Give ``path`` (recursively) to the user the servers run as, when we are root."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(SERVER_USER)
    for folder, _dirs, files in os.walk(path):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)


def migrate(url: str, settings: str | None = None) -> None:
    """``django-admin migrate`` the site's tables into the database at ``url``.

    ``settings``: the site's settings module (default: this process's
    ``DJANGO_SETTINGS_MODULE``), importable from the current directory.
    """
    env = {**os.environ, "DATABASE_URL": url}
    if settings is not None:
        env["DJANGO_SETTINGS_MODULE"] = settings
    result = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{result.stdout}{result.stderr}")


class PrivateServer:
    """A server of a test's own: a free port of 127.0.0.1, its files and log in a temporary
    folder; ``with`` starts it and cleans up after it. Connect as ``postgres`` without a
    password."""

    prefix = "botdialogs-server-"
    log_name = "server.log"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.logfile = self.root / self.log_name

    @property
    def server_url(self) -> str:
        """``postgres://postgres@127.0.0.1:<port>`` (append ``/<database>``)."""
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        """A ``DATABASE_URL`` for ``database`` on this server."""
        return f"{self.server_url}/{database}"

    def log_tail(self, characters: int = 3000) -> str:
        """The end of the server's log (for failure messages)."""
        try:
            return self.logfile.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def start(self) -> None:
        """Start the server; returns once it accepts connections."""
        raise NotImplementedError

    def cleanup(self) -> None:
        """Stop the server (if it runs) and delete its folder."""
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()


class PrivatePostgres(PrivateServer):
    """``initdb`` in a temporary folder, served with ``pg_ctl`` on a free port (fsync off).

    ``stop(mode)`` and ``start()`` may be called any number of times (``mode="immediate"`` is
    a crash: clients lose their connections, the next start recovers); :meth:`cleanup` stops
    the server and deletes its files.
    """

    prefix = "botdialogs-pg-"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.bin = postgres_bin()
        self.data = self.root / "data"
        self.initialised = False

    def _run(self, *command: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [str(self.bin / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            check=False,
            **as_server_user(),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"\n{self.log_tail()}"
            )

    def start(self) -> None:
        """Create the cluster on first use, then start the server; returns once it accepts
        connections."""
        if not self.initialised:
            hand_over(self.root)
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                "--no-sync", "--no-instructions",
            )  # fmt: skip
            self.initialised = True
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            # fsync off is safe against a crash of PostgreSQL (the kernel keeps what it wrote);
            # synchronous_commit stays on: off, a crash forgets commits already acknowledged.
            "-c fsync=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients are disconnected, clean shutdown) or
        ``immediate`` (like a crash). Returns once it is down."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        """True while the postmaster runs."""
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (a copy of ``template`` if given) and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            suffix = f' TEMPLATE "{template}"' if template else ""
            connection.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def migrate(self, database: str, settings: str | None = None) -> None:
        """Migrate the site's tables into ``database`` (see :func:`migrate`)."""
        migrate(self.url(database), settings)

    def cleanup(self) -> None:
        """Stop the server (if it runs) and delete its folder."""
        if self.initialised and self.running:
            with contextlib.suppress(RuntimeError):  # already down: the folder goes anyway
                self.stop("immediate")
        super().cleanup()


PGBOUNCER_INI = """\
[databases]
* = host={host} port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/userlist.txt
pool_mode = {pool_mode}
max_client_conn = 1000
default_pool_size = {pool_size}
ignore_startup_parameters = extra_float_digits,options
logfile = {logfile}
"""


def pgbouncer_command() -> str:
    """The ``pgbouncer`` executable."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        raise FileNotFoundError("pgbouncer is not installed (apt-get install pgbouncer)")
    return found


class PgBouncer(PrivateServer):
    """One PgBouncer process for every database of the server on ``upstream_port``.

    ``pool_mode="transaction"``: a client's server connection may change after every
    transaction, which is what breaks session advisory locks and prepared statements.
    """

    prefix = "botdialogs-pgbouncer-"
    log_name = "pgbouncer.log"

    def __init__(
        self,
        upstream_port: int,
        upstream_host: str = "127.0.0.1",
        pool_mode: str = "transaction",
        pool_size: int = 20,
    ) -> None:
        super().__init__()
        config = self.root / "pgbouncer.ini"
        config.write_text(
            PGBOUNCER_INI.format(
                host=upstream_host,
                upstream_port=upstream_port,
                port=self.port,
                root=self.root,
                logfile=self.logfile,
                pool_mode=pool_mode,
                pool_size=pool_size,
            )
        )
        # With auth_type=trust the user must still be listed.
        (self.root / "userlist.txt").write_text(f'"{SERVER_USER}" ""\n')
        self.process = ListeningProcess(
            [pgbouncer_command(), str(config)],
            os.environ,
            self.port,
            start_timeout=30.0,
            cwd=self.root,
            popen_options=as_server_user(),
        )

    def start(self) -> None:
        """Start PgBouncer; returns once it accepts connections."""
        hand_over(self.root)
        self.process.start()

    def cleanup(self) -> None:
        """Stop PgBouncer and wait for it; its files are deleted."""
        self.process.stop()
        super().cleanup()
