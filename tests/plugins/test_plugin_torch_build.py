"""plugins.torch's build lock, on the CPU: a build killed midway must not make later builds wait forever."""
from __future__ import annotations

import subprocess
import sys
import threading

import plugins.torch as pt


def test_exclusive_build_removes_a_stale_torch_lock(tmp_path, monkeypatch, capsys):
    # torch's own lock file, as a killed build leaves it: with our lock held it can only be stale
    monkeypatch.setattr(pt, "BUILD_DIR", tmp_path)
    (tmp_path / "lock").write_text("")
    with pt.exclusive_build():
        assert not (tmp_path / "lock").exists()
    assert "left by an interrupted build" in capsys.readouterr().err


def test_exclusive_build_lock_dies_with_its_holder(tmp_path, monkeypatch):
    monkeypatch.setattr(pt, "BUILD_DIR", tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); time.sleep(120)", str(tmp_path / ".build.flock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        entered = threading.Event()

        def build():
            with pt.exclusive_build():
                entered.set()

        t = threading.Thread(target=build, daemon=True)
        t.start()
        assert not entered.wait(1.0)  # a live holder keeps others out
        holder.kill()                 # as a timeout kills a build
        holder.wait()
        assert entered.wait(10.0)     # and its lock goes with it
    finally:
        holder.kill()
        holder.stdout.close()
