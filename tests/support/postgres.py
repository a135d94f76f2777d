"""A throwaway PostgreSQL cluster for the test run.

`start_cluster` runs `initdb` and `pg_ctl` from the newest server under
/usr/lib/postgresql/*/bin (Debian's layout; PATH as a fallback). The cluster
listens on 127.0.0.1 only, on a free port, trusts every local connection, and
trades durability for speed (fsync, synchronous_commit and full_page_writes
off). PostgreSQL refuses to run as root, so under root the server runs as the
`postgres` system user (or `nobody`) and its files belong to that user.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "postgres"
_SERVER_ROOT = Path("/usr/lib/postgresql")
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_START_ATTEMPTS = 3
_WORK_DIR_PREFIX = "media-gateway-postgres-"


class PostgresError(RuntimeError):
    """The test cluster could not be found, started or used."""


@dataclass
class PostgresCluster:
    url: str
    bin_dir: Path = field(repr=False)
    work_dir: Path = field(repr=False)
    run_as: tuple[str, ...] = field(repr=False)
    port: int = field(default=0, repr=False)
    host: str = field(default="127.0.0.1", repr=False)
    user: str = field(default=SUPERUSER, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    def database_url(self, name: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create database `name` and return its SQLAlchemy asyncpg URL."""
        self._psql(f'CREATE DATABASE "{_checked_name(name)}"')
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, disconnecting whoever is still connected."""
        self._psql(f'DROP DATABASE IF EXISTS "{_checked_name(name)}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and delete its files; later calls do nothing."""
        if self._stopped:
            return
        self._stopped = True
        if (self.data_dir / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                done = _run(
                    self._server_command(
                        "pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w"
                    ),
                    cwd=self.work_dir,
                    check=False,
                )
                if done.returncode == 0:
                    break
        if self.work_dir.name.startswith(_WORK_DIR_PREFIX):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _server_command(self, tool: str, *args: str) -> list[str]:
        """`tool` from the server's bin directory, run as the server's user."""
        return [*self.run_as, str(self.bin_dir / tool), *args]

    def _psql(self, sql: str) -> None:
        if self._stopped:
            raise PostgresError("the cluster is stopped")
        psql = self.bin_dir / "psql"
        connection = ("-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres")
        _run([str(psql if psql.exists() else "psql"), "-X", "-q", *connection, "-c", sql])


def start_cluster(base_dir: Path) -> PostgresCluster:
    """Initialise and start a cluster whose files live under `base_dir`."""
    bin_dir = find_bin_dir()
    run_as: tuple[str, ...] = ()
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        owner = _unprivileged_user()
        run_as = _run_as_prefix(owner)

    base_dir.mkdir(parents=True, exist_ok=True)
    if run_as and not _reachable(run_as, base_dir):
        # pytest's temporary directories are private to root: use a directory
        # the server user can reach.
        base_dir = Path(tempfile.gettempdir())
    work_dir = Path(tempfile.mkdtemp(prefix=_WORK_DIR_PREFIX, dir=base_dir))
    socket_dir = work_dir / "socket"
    socket_dir.mkdir()
    if owner is not None:
        for path in (work_dir, socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    cluster = PostgresCluster(url="", bin_dir=bin_dir, work_dir=work_dir, run_as=run_as)
    try:
        options = ("-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        _run(cluster._server_command("initdb", "-D", str(cluster.data_dir), *options), cwd=work_dir)
        with (cluster.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = {_conf_string(str(socket_dir))}\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 200\n"
            )
        cluster.port = _start(cluster)
    except BaseException:
        cluster.stop()
        raise
    cluster.url = cluster.database_url("postgres")
    atexit.register(cluster.stop)
    return cluster


def find_bin_dir() -> Path:
    """The bin directory of the newest installed PostgreSQL server."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for initdb in _SERVER_ROOT.glob("*/bin/initdb"):
        version = initdb.parent.parent.name
        if (initdb.parent / "pg_ctl").exists() and re.fullmatch(r"\d+(\.\d+)*", version):
            found.append((tuple(int(part) for part in version.split(".")), initdb.parent))
    if found:
        return max(found)[1]
    initdb_on_path = shutil.which("initdb")
    if initdb_on_path and shutil.which("pg_ctl"):
        return Path(initdb_on_path).resolve().parent
    raise PostgresError(
        f"no PostgreSQL server found under {_SERVER_ROOT}/*/bin or on PATH "
        "(Debian: apt-get install postgresql)"
    )


def _start(cluster: PostgresCluster) -> int:
    """Start the server on a free port and return that port."""
    log = cluster.work_dir / "server.log"
    detail = ""
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        options = ("-w", "-t", "60", "-l", str(log), "-o", f"-p {port}")
        done = _run(
            cluster._server_command("pg_ctl", "start", "-D", str(cluster.data_dir), *options),
            cwd=cluster.work_dir,
            check=False,
        )
        if done.returncode == 0:
            return port
        server_log = log.read_text(errors="replace") if log.exists() else ""
        detail = f"{done.stdout}{done.stderr}\n{server_log[-4000:]}"
        if "could not bind" not in server_log and "already in use" not in server_log:
            break
    raise PostgresError(f"pg_ctl start failed:\n{detail}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError("running as root, but neither a `postgres` nor a `nobody` user exists")


def _run_as_prefix(user: pwd.struct_passwd) -> tuple[str, ...]:
    if shutil.which("runuser"):
        return ("runuser", "-u", user.pw_name, "--")
    if shutil.which("setpriv"):
        return (
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "--",
        )
    raise PostgresError("running as root, but neither runuser nor setpriv is installed")


def _reachable(run_as: Sequence[str], path: Path) -> bool:
    """Whether the server user may traverse every directory down to `path`."""
    return _run([*run_as, "test", "-x", str(path)], check=False).returncode == 0


def _run(
    args: Sequence[str], *, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise PostgresError(
            f"{' '.join(args)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done


def _checked_name(name: str) -> str:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return name


def _conf_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
