"""Test harness: network namespaces, veth links and module runs that the tests own.

Every namespace is named with this run's prefix and removed at the end, processes that the
tests start are tracked by PID and stopped, so a failed test leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "build" / "collections"
PYTHON = sys.executable


def ensure_collection_link():
    """ansible_collections/hypervisor/network must point at this checkout for imports."""
    link = COLLECTIONS / "ansible_collections" / "hypervisor" / "network"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    return COLLECTIONS


def sh(argv, check=True, input=None, timeout=60):
    """Run argv on the machine running the tests; return CompletedProcess (text)."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed rc=%s\nstdout: %s\nstderr: %s" % (argv, proc.returncode, proc.stdout, proc.stderr))
    return proc


class Lab:
    """A set of namespaces and links owned by one test."""

    def __init__(self, tag="t"):
        self.prefix = "hn%s%s" % (tag[:3], uuid.uuid4().hex[:5])
        self.namespaces = []
        self.pids = []
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix + "-"))

    # -- namespaces and links -------------------------------------------------------------
    def ns(self, short):
        name = "%s-%s" % (self.prefix, short)
        sh(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.run(name, ["ip", "link", "set", "lo", "up"])
        return name

    def run(self, ns, argv, check=True, input=None, timeout=60):
        return sh(["ip", "netns", "exec", ns] + list(argv), check=check, input=input, timeout=timeout)

    def veth(self, ns_a, if_a, ns_b, if_b):
        """A veth pair with one end in each namespace, both up."""
        tmp_a, tmp_b = "v%s" % uuid.uuid4().hex[:10], "v%s" % uuid.uuid4().hex[:10]
        sh(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
        sh(["ip", "link", "set", tmp_a, "netns", ns_a, "name", if_a])
        sh(["ip", "link", "set", tmp_b, "netns", ns_b, "name", if_b])
        self.run(ns_a, ["ip", "link", "set", if_a, "up"])
        self.run(ns_b, ["ip", "link", "set", if_b, "up"])

    def addr(self, ns, ifname, cidr):
        self.run(ns, ["ip", "addr", "add", cidr, "dev", ifname] + (["nodad"] if ":" in cidr else []))

    def route(self, ns, *spec):
        self.run(ns, ["ip", "route", "add"] + list(spec))

    def sysctl(self, ns, key, value):
        self.run(ns, ["sysctl", "-qw", "%s=%s" % (key, value)])

    # -- processes ------------------------------------------------------------------------
    def spawn(self, ns, argv, **popen):
        """Start a long-running process in ``ns``; it is stopped at teardown."""
        proc = subprocess.Popen(["ip", "netns", "exec", ns] + list(argv), start_new_session=True, **popen)
        self.pids.append(proc.pid)
        return proc

    def track_pid(self, pid):
        self.pids.append(int(pid))

    def serve_tcp(self, ns, port, address="0.0.0.0"):
        """A tiny TCP service that answers every connection with the peer's address."""
        code = (
            "import socket,sys\n"
            "fam=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n"
            "s=socket.socket(fam);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(16)\n"
            "while True:\n"
            "    c,a=s.accept();c.sendall(('peer=%s\\n'%a[0]).encode());c.close()\n"
        )
        proc = self.spawn(ns, [PYTHON, "-c", code, address, str(port)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = self.run(ns, ["ss", "-Htln"]).stdout
            if ":%d " % port in out:
                return proc
            time.sleep(0.05)
        raise AssertionError("service on port %s in %s did not start" % (port, ns))

    def connect(self, ns, host, port, timeout=3.0, source=None):
        """Connect from ``ns`` and return what the service said, or None if it failed."""
        code = (
            "import socket,sys\n"
            "fam=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n"
            "s=socket.socket(fam);s.settimeout(float(sys.argv[3]))\n"
            "src=sys.argv[4] if len(sys.argv)>4 else None\n"
            "src and s.bind((src,0))\n"
            "s.connect((sys.argv[1],int(sys.argv[2])));print(s.recv(200).decode().strip())\n"
        )
        argv = [PYTHON, "-c", code, host, str(port), str(timeout)] + ([source] if source else [])
        proc = self.run(ns, argv, check=False, timeout=timeout + 10)
        return proc.stdout.strip() if proc.returncode == 0 else None

    # -- modules --------------------------------------------------------------------------
    def module(self, ns, name, args, check_mode=False, diff=False, expect_fail=False, wrapper=None, env=None):
        """Run a collection module inside ``ns`` the way Ansible does (JSON args file).

        ``wrapper`` (an argv prefix such as ``nsenter -t PID -n -m``) replaces ``ip netns exec ns``
        for hosts that also live in their own mount namespace (tests/libvirt_lab.py).
        ``env`` adds to the module's environment (PATH for recorded command-line fixtures).
        """
        ensure_collection_link()
        payload = dict(args)
        payload["_ansible_check_mode"] = check_mode
        payload["_ansible_diff"] = diff
        argsfile = self.tmp / ("args-%s.json" % uuid.uuid4().hex[:8])
        argsfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        env = dict(os.environ, **(env or {}))
        env["PYTHONPATH"] = str(COLLECTIONS)
        argv = [PYTHON, "-m", "ansible_collections.hypervisor.network.plugins.modules.%s" % name, str(argsfile)]
        if wrapper is not None:
            argv = list(wrapper) + argv
        elif ns is not None:
            argv = ["ip", "netns", "exec", ns] + argv
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module %s printed no JSON: rc=%s\n%s\n%s" % (name, proc.returncode, proc.stdout, proc.stderr))
        failed = bool(result.get("failed"))
        if failed != expect_fail:
            raise AssertionError("module %s %s: %s" % (name, "failed" if failed else "did not fail", json.dumps(result, indent=1)))
        return result

    # -- teardown -------------------------------------------------------------------------
    def close(self):
        for pid in reversed(self.pids):
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for pid in self.pids:
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                    if _reap(pid):
                        break
                    time.sleep(0.05)
                except ProcessLookupError:
                    break
            else:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for name in reversed(self.namespaces):
            sh(["ip", "netns", "del", name], check=False)
        subprocess.run(["rm", "-rf", str(self.tmp)], check=False)


def _reap(pid):
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return False
