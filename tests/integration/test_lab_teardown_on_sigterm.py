"""A test run ended by SIGTERM (a CI timeout, ``kill``) still tears its labs down: the namespaces
it made are gone and the processes it started have stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netlab import REPO, sh

PROBE = "HNET_SIGTERM_PROBE"


@pytest.mark.skipif(not os.environ.get(PROBE), reason="run by test_sigterm_tears_the_lab_down only")
def test_probe_holds_a_lab_until_killed(lab):
    """Makes a namespace with a process in it, says so, and waits to be killed."""
    ns = lab.ns("probe")
    sleeper = lab.spawn(ns, ["sleep", "600"])
    Path(os.environ[PROBE]).write_text("%s %d\n" % (ns, sleeper.pid))
    time.sleep(600)


def test_sigterm_tears_the_lab_down(tmp_path):
    said = tmp_path / "probe"
    env = dict(os.environ, **{PROBE: str(said)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "%s::test_probe_holds_a_lab_until_killed" % Path(__file__).relative_to(REPO)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ns = pid = None
    try:
        deadline = time.monotonic() + 120
        while not said.exists() or not said.read_text().endswith("\n"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.2)
        ns, pid = said.read_text().split()
        assert _has_namespace(ns)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0]
        assert proc.returncode != 0, output
        assert not _has_namespace(ns), "the namespace is left behind:\n" + output
        assert not _sleeping(pid), "the lab's process still runs:\n" + output
    finally:
        # what this test made, should the run under test have left it behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid and _sleeping(pid):
            os.killpg(int(pid), signal.SIGKILL)
        if ns and _has_namespace(ns):
            sh(["ip", "netns", "del", ns], check=False)


def _has_namespace(ns):
    return ns in sh(["ip", "netns", "list"]).stdout.split()


def _sleeping(pid):
    try:
        return Path("/proc/%s/cmdline" % pid).read_text().startswith("sleep")
    except OSError:
        return False
