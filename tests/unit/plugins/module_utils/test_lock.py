# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_lock with real flock between real processes, on lock files in a temp dir. No clock is
asserted: a holder is told when to let go over a pipe, and the waiter's outcome is what counts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils import _lock
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError

COLLECTIONS = str(Path(__file__).resolve().parents[4] / "build" / "collections")

HOLDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
    with host_lock(sys.argv[2]):
        print("held", flush=True)
        sys.stdin.readline()  # hold until the test says so
    print("released", flush=True)
""")


class Holder:
    """Another process that takes the lock and holds it until released."""

    def __init__(self, path):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, COLLECTIONS, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "held\n"

    def release(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "released\n"
        assert self.proc.wait(timeout=30) == 0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def holder_factory():
    holders = []

    def make(path):
        holders.append(Holder(path))
        return holders[-1]

    yield make
    for holder in holders:
        holder.kill()


def test_a_lock_held_by_another_process_is_not_taken_and_the_error_names_it(tmp_path, holder_factory):
    path = tmp_path / "host.lock"
    holder = holder_factory(path)
    with pytest.raises(HypervisorNetworkError) as info:
        with _lock.host_lock(str(path), timeout=0.3):
            pytest.fail("the lock was taken while another process held it")
    assert str(path) in info.value.msg and "another hypervisor.network task" in info.value.msg
    holder.release()
    with _lock.host_lock(str(path), timeout=5):
        pass


def test_a_waiter_gets_the_lock_once_the_holder_lets_go(tmp_path, holder_factory):
    path = tmp_path / "host.lock"
    holder = holder_factory(path)
    waiter = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
        print("waiting", flush=True)
        with host_lock(sys.argv[2], timeout=60):
            print("got it", flush=True)
    """), COLLECTIONS, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert waiter.stdout.readline() == "waiting\n"
        holder.release()
        assert waiter.stdout.readline() == "got it\n"
        assert waiter.wait(timeout=30) == 0
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()


def test_two_processes_never_interleave_inside_the_lock(tmp_path):
    """Each worker appends begin/end around its block; under the lock the pairs never interleave."""
    path, log = tmp_path / "host.lock", tmp_path / "log"
    worker = textwrap.dedent("""
        import os, sys
        sys.path.insert(0, sys.argv[1])
        from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
        for _ in range(50):
            with host_lock(sys.argv[2], timeout=60):
                with open(sys.argv[3], "a") as log:
                    log.write("begin %s\\n" % sys.argv[4]); log.flush()
                    os.sched_yield()
                    log.write("end %s\\n" % sys.argv[4])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", worker, COLLECTIONS, str(path), str(log), name])
             for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lines = log.read_text().splitlines()
    assert len(lines) == 200
    for begin, end in zip(lines[::2], lines[1::2]):
        assert begin.startswith("begin ") and end == "end " + begin.split()[1], (begin, end)


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    path = tmp_path / "host.lock"
    with pytest.raises(RuntimeError):
        with _lock.host_lock(str(path)):
            raise RuntimeError("apply failed")
    probe = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
        with host_lock(sys.argv[2], timeout=0.3):
            pass
    """), COLLECTIONS, str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode == 0, probe.stderr


def test_the_lock_directory_is_made(tmp_path):
    path = tmp_path / "run" / "hypervisor-network" / "x.lock"
    with _lock.host_lock(str(path)):
        assert path.exists()


def test_the_default_path_is_one_per_network_namespace():
    """Sandbox hypervisors share a file system but not a netns: their locks must differ."""
    own = _lock.default_lock_path()
    assert own == os.path.join(_lock.LOCK_DIR, "netns-%d.lock" % os.stat("/proc/self/ns/net").st_ino)
    if os.geteuid() != 0:
        pytest.skip("another network namespace needs root")
    other = subprocess.run(["unshare", "--net", sys.executable, "-c",
                            "import sys; sys.path.insert(0, %r); from ansible_collections.hypervisor.network."
                            "plugins.module_utils._lock import default_lock_path; print(default_lock_path())"
                            % COLLECTIONS], capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert other.startswith(_lock.LOCK_DIR + "/netns-") and other != own
