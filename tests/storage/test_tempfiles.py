"""Temporary blob names carry their writer (storage/blobs/tempfiles.py), so that clean_temporary
removes a dead process's leftovers at once and spares the transfers of live ones."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.blobs import LocalBlobStore
from storage.blobs.tempfiles import host_name, pid_running, temp_name, writer_is_gone, writer_of


def exited_pid() -> int:
    """The pid of a process that ran and was reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def name_for(pid: int, incarnation: str = "0badcafe", host: str | None = None) -> str:
    return f"{pid}.{incarnation}.{'ab' * 12}.{host or host_name()}.part"


def test_a_name_says_who_writes_it() -> None:
    name = temp_name()
    assert name.endswith(".part") and temp_name() != name
    writer = writer_of(name)
    assert writer is not None
    assert (writer.pid, writer.host) == (os.getpid(), host_name())
    assert writer_of("0123abcd.part") is None
    assert writer_of("../1.0badcafe.x.host.part") is None


def test_whose_writer_is_gone() -> None:
    mine = temp_name()
    assert not writer_is_gone(mine)
    # The same pid but another incarnation: a dead process whose pid this one got.
    assert writer_is_gone(name_for(os.getpid()))
    assert writer_is_gone(name_for(exited_pid()))
    assert not writer_is_gone(name_for(os.getppid()))  # a running process
    assert not writer_is_gone(name_for(exited_pid(), host="another-host"))  # cannot tell
    assert not writer_is_gone("leftover-from-an-old-version.part")


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        stat = Path(f"/proc/{child.pid}/stat")
        while stat.exists() and stat.read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not pid_running(child.pid)
    finally:
        child.wait()


def test_a_forked_child_has_an_incarnation_of_its_own() -> None:
    mine = writer_of(temp_name())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its name and leave at once
        os.write(write, temp_name().encode())
        os._exit(0)
    os.close(write)
    child_name = os.read(read, 200).decode()
    os.close(read)
    os.waitpid(pid, 0)
    child = writer_of(child_name)
    assert mine is not None and child is not None
    assert child.pid == pid != mine.pid
    assert child.incarnation != mine.incarnation


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalBlobStore]:
    yield LocalBlobStore(tmp_path / "media")


async def test_clean_temporary_removes_dead_writers_files_at_once(store: LocalBlobStore) -> None:
    tmp = store.root / ".tmp"
    dead = tmp / name_for(exited_pid())
    earlier_me = tmp / name_for(os.getpid())
    live = tmp / name_for(os.getppid())
    unknown = tmp / "0123.part"
    elsewhere = tmp / name_for(exited_pid(), host="another-host")
    for path in (dead, earlier_me, live, unknown, elsewhere):
        path.write_bytes(b"young")
    in_flight = await store.receive(_chunks(b"mine, in flight"), limit=100)
    assert await store.clean_temporary() == 2
    remaining = sorted(p.name for p in tmp.iterdir())
    assert remaining == sorted([live.name, unknown.name, elsewhere.name, in_flight.path.name])
    assert await store.clean_temporary(older_than=0) == 4


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
