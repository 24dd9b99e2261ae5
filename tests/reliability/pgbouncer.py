"""PgBouncer in front of a PostgreSQL server, for tests: transaction pooling by default.

PgBouncer refuses to run as root; as root it runs as the ``postgres`` user, like the private
PostgreSQL server. CI installs the Debian package ``pgbouncer`` (see ``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from botdialogs.testing import ListeningProcess, free_port
from botdialogs.testing.postgres import as_server_user, hand_over

INI = """\
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
logfile = {root}/pgbouncer.log
"""


def pgbouncer_command() -> str:
    """The ``pgbouncer`` executable."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        raise FileNotFoundError("pgbouncer is not installed (apt-get install pgbouncer)")
    return found


class PgBouncer:
    """One PgBouncer process on a free port of 127.0.0.1, for every database of ``upstream``.

    ``pool_mode="transaction"``: a client's server connection may change after every
    transaction, which is what breaks session advisory locks and prepared statements.
    """

    def __init__(
        self,
        upstream_port: int,
        upstream_host: str = "127.0.0.1",
        pool_mode: str = "transaction",
        pool_size: int = 20,
    ) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="botdialogs-pgbouncer-"))
        self.config = self.root / "pgbouncer.ini"
        self.config.write_text(
            INI.format(
                host=upstream_host,
                upstream_port=upstream_port,
                port=self.port,
                root=self.root,
                pool_mode=pool_mode,
                pool_size=pool_size,
            )
        )
        # With auth_type=trust the user must still be listed.
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        self.process = ListeningProcess(
            [pgbouncer_command(), str(self.config)],
            os.environ,
            self.port,
            start_timeout=30.0,
            cwd=self.root,
            popen_options=as_server_user(),
        )

    def url(self, database: str) -> str:
        """A ``DATABASE_URL`` for ``database`` through this PgBouncer."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        """PgBouncer's log so far."""
        try:
            return (self.root / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        """Start PgBouncer; returns once it accepts connections."""
        hand_over(self.root)
        self.process.start()

    def stop(self) -> None:
        """Stop PgBouncer and wait for it; its files are deleted."""
        self.process.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
