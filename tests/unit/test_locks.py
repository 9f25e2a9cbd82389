"""The output lock: re-entrant in one process, refused (naming the holder) in another, gone when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lmtailor.locks import LockedError, hold, lock_path

HOLDER = """
import sys, time
from lmtailor.locks import hold
with hold(sys.argv[1], "the folder"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_lock_file_sits_beside_the_folder(tmp_path: Path):
    assert lock_path(tmp_path / "out") == tmp_path / ".out.lock"


def test_reentrant_in_one_process_and_removed_after(tmp_path: Path):
    lock = tmp_path / ".out.lock"
    with hold(lock, "out"):
        with hold(lock, "out"):
            assert lock.is_file()
        assert lock.is_file()
    assert not lock.exists()


def test_another_process_is_refused_until_the_holder_is_killed(tmp_path: Path):
    lock = tmp_path / ".out.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        held_elsewhere = rf"out is being written by another lmtailor run \(process {proc.pid} on "
        with pytest.raises(LockedError, match=held_elsewhere), hold(lock, "out"):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with hold(lock, "out"):  # SIGKILL left the file but not the lock
        pass


def test_torchrun_workers_take_no_lock(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with hold(tmp_path / ".out.lock", "out"):
        assert not (tmp_path / ".out.lock").exists()
    assert os.environ["RANK"] == "1"
