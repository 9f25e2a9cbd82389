"""Advisory locks that keep two lmtailor runs from writing the same output folder or build work folder at once.

A lock is `flock` on a small hidden file beside what it guards (`.NAME.lock`). Why `fcntl.flock` and not the
`filelock` package (which uses the same call): the lock file also says *who* holds it (process id, host, command,
start time), so the second run can name the holder, and `filelock` truncates the file on every attempt, which would
erase that note. The kernel drops a `flock` when its process dies, even by SIGKILL, so a killed run never leaves a
stale lock behind: the note it leaves is just overwritten by the next holder. A run that ends removes its lock file
(still holding the lock, then checking on the next acquire that the file it locked is still the one at the path).

Locks are re-entrant within one process (a stage claims its output at the start, and writes it at the end under the
same claim). Under torchrun only the main process (RANK 0) writes outputs, so only it takes the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lmtailor.errors import LmtailorError

_held: dict[str, int] = {}  # lock file → nesting depth in this process


class LockedError(LmtailorError):
    """Another run holds the lock on a folder this run would write."""


def lock_path(target: Path) -> Path:
    """The lock file of an output folder: `.NAME.lock` beside it (the folder itself is replaced atomically)."""
    target = Path(os.path.abspath(target))
    return target.with_name(f".{target.name}.lock")


def _holder(fd: int) -> str:
    try:
        note = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        note = {}
    if not note:
        return "another process"
    return f"process {note.get('pid')} on {note.get('host')}, `{note.get('command')}`, since {note.get('since')}"


@contextmanager
def hold(lock_file: Path, what: str) -> Iterator[None]:
    """Hold the exclusive lock `lock_file` for the duration, or raise `LockedError` naming `what` and the holder."""
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun workers write nothing; their main process holds the lock
        yield
        return
    key = os.path.abspath(lock_file)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = _acquire(key, what)
    try:
        note = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv))[:300],
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(note).encode("utf-8"), 0)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            with contextlib.suppress(OSError):
                os.unlink(key)  # while still locked: a run that opened it meanwhile sees it gone and retries
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def _acquire(key: str, what: str) -> int:
    """A descriptor of `key` holding its flock; retried when the holder removed the file between open and lock."""
    while True:
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockedError(
                f"{what} is being written by another lmtailor run ({holder}); wait for it to finish, or choose "
                "another output folder."
            ) from None
        try:
            same = os.stat(key).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
