"""Names of temporary blobs that say which process writes them.

A process killed in the middle of an upload (SIGKILL, out of memory, a lost machine) leaves
its temporary file behind; nothing in that process will ever delete it. Other processes may
be writing temporary files in the same folder at the same time (uvicorn workers, a second
gateway on the same media root), so "remove every temporary file at startup" would break
their transfers, and "remove those not written for an hour" leaves a crash's files for an
hour. So each name carries its writer:

    <pid>.<incarnation>.<random>.<host>.part

``incarnation`` is random per process: a process that got the pid of a dead one (containers
restart with the same small pids) still tells the dead one's files from its own. A file is
left over for sure when its host is this host and either its pid is this process's with
another incarnation, or no process with its pid runs. Files of other hosts (a media root on
a network filesystem), of pids that run again under another program, and names without a
writer fall back to the age rule of ``BlobStore.clean_temporary``.

Two processes that share a media root must not share a host name while living in separate
pid namespaces (containers get their own host names by default).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(
    r"\A(?P<pid>[1-9][0-9]{0,9})\.(?P<incarnation>[0-9a-f]{8})\.[0-9a-f]{24}"
    r"\.(?P<host>[A-Za-z0-9-]{1,63})\.[a-z]+\Z"
)

_current: tuple[int, str] | None = None


def host_name() -> str:
    """This host's name as it appears in temporary file names."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "localhost"


def _this_process() -> tuple[int, str]:
    """(pid, incarnation); a forked child gets an incarnation of its own."""
    global _current
    pid = os.getpid()
    if _current is None or _current[0] != pid:
        _current = (pid, secrets.token_hex(4))
    return _current


def temp_name(suffix: str = ".part") -> str:
    """A new, unique temporary file name that names this process as its writer."""
    pid, incarnation = _this_process()
    return f"{pid}.{incarnation}.{secrets.token_hex(12)}.{host_name()}{suffix}"


@dataclass(frozen=True)
class Writer:
    pid: int
    incarnation: str
    host: str


def writer_of(name: str) -> Writer | None:
    """The writer a temporary file name carries, or None for other names."""
    match = _NAME.match(name)
    if match is None:
        return None
    return Writer(int(match["pid"]), match["incarnation"], match["host"])


def pid_running(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return True
    return not state or state[0] not in ("Z", "X")


def writer_is_gone(name: str) -> bool:
    """True only when the file's writer surely no longer runs (see the module)."""
    writer = writer_of(name)
    if writer is None or writer.host != host_name():
        return False
    pid, incarnation = _this_process()
    if writer.pid == pid:
        return writer.incarnation != incarnation
    return not pid_running(writer.pid)


__all__ = ["Writer", "host_name", "pid_running", "temp_name", "writer_is_gone", "writer_of"]
