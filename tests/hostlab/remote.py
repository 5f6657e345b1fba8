# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``lab`` interface of tests/netlab.py, played inside a VM of the host lab.

A test written against ``lab`` (namespaces, veths, addresses, a TCP service and a client, module
runs) runs unchanged inside a real Debian host: the "hv" namespace is the VM's own network stack,
guest namespaces are namespaces inside the VM, commands go over SSH, and ``module`` runs the
module the way users do, through ``ansible-playbook`` over SSH.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from pathlib import Path

HOST = "@host"  # the VM itself: what tests call their "hv" namespace

SERVE = (
    "import socket,sys\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(16)\n"
    "while True:\n"
    "    c,a=s.accept();c.sendall(('peer=%s\\n'%a[0]).encode());c.close()\n"
)
CONNECT = (
    "import socket,sys\n"
    "s=socket.socket();s.settimeout(float(sys.argv[3]))\n"
    "s.connect((sys.argv[1],int(sys.argv[2])));print(s.recv(200).decode().strip())\n"
)


class RemoteLab:
    """Namespaces and links inside one VM; ``close()`` removes what this test made there."""

    def __init__(self, hostlab, vm):
        self.hostlab = hostlab
        self.vm = vm
        self.prefix = "t%s" % uuid.uuid4().hex[:4]
        self.namespaces = []
        self.tmp = Path("/tmp") / self.prefix  # a path on the VM for files a test writes there
        self.local = hostlab.tmp / self.prefix
        self.local.mkdir()
        self.sh("mkdir -p %s" % self.tmp)

    def sh(self, command, check=True, timeout=120):
        return self.hostlab.ssh(self.vm, command, check=check, timeout=timeout)

    def _wrap(self, ns, argv):
        command = " ".join(shlex.quote(str(a)) for a in argv)
        return command if ns == HOST else "ip netns exec %s %s" % (shlex.quote(ns), command)

    def ns(self, short):
        if short == "hv":
            return HOST
        name = "%s-%s" % (self.prefix, short)
        self.sh("ip netns add %s && ip -n %s link set lo up" % (name, name))
        self.namespaces.append(name)
        return name

    def run(self, ns, argv, check=True, input=None, timeout=60):
        proc = self.sh(self._wrap(ns, argv), check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError("%s on %s failed rc=%s\n%s%s" % (argv, self.vm.name, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def veth(self, ns_a, if_a, ns_b, if_b):
        tmp_a, tmp_b = "v%s" % uuid.uuid4().hex[:10], "v%s" % uuid.uuid4().hex[:10]
        steps = ["ip link add %s type veth peer name %s" % (tmp_a, tmp_b)]
        for tmp, ns, name in ((tmp_a, ns_a, if_a), (tmp_b, ns_b, if_b)):
            if ns == HOST:
                steps += ["ip link set %s name %s" % (tmp, name), "ip link set %s up" % name]
            else:
                steps += ["ip link set %s netns %s name %s" % (tmp, ns, name), "ip -n %s link set %s up" % (ns, name)]
        self.sh(" && ".join(steps))

    def addr(self, ns, ifname, cidr):
        self.run(ns, ["ip", "addr", "add", cidr, "dev", ifname] + (["nodad"] if ":" in cidr else []))

    def route(self, ns, *spec):
        self.run(ns, ["ip", "route", "add"] + list(spec))

    def serve_tcp(self, ns, port, address="0.0.0.0"):
        server = self._wrap(ns, ["python3", "-c", SERVE, address, port])
        self.sh("%s >/dev/null 2>&1 </dev/null & " % server
                + "for i in $(seq 100); do %s | grep -q ':%d ' && exit 0; sleep 0.1; done; exit 1" % (self._wrap(ns, ["ss", "-Htln"]), port))

    def connect(self, ns, host, port, timeout=3.0, source=None):
        proc = self.run(ns, ["python3", "-c", CONNECT, host, str(port), str(timeout)], check=False, timeout=timeout + 30)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def module(self, ns, name, args, check_mode=False, diff=False, expect_fail=False):
        """Run ``hypervisor.network.NAME`` on the VM with ansible-playbook over SSH; its result."""
        return self.modules(ns, [(name, args)], check_mode=check_mode, diff=diff, expect_fail=expect_fail)[0]

    def modules(self, ns, calls, check_mode=False, diff=False, expect_fail=False):
        """Several module calls [(name, args)] as the tasks of one play (one Ansible start-up,
        which costs most under TCG); their results in order."""
        assert ns == HOST, "modules run on the VM itself"
        tasks, outs = [], []
        for index, (name, args) in enumerate(calls):
            out = self.local / ("result-%s.json" % uuid.uuid4().hex[:6])
            tasks.append({"hypervisor.network.%s" % name: args, "register": "result%d" % index, "ignore_errors": True,
                          "check_mode": check_mode, "diff": diff})
            tasks.append({"ansible.builtin.copy": {"content": "{{ result%d | to_json }}" % index, "dest": str(out)},
                          "delegate_to": "localhost"})
            outs.append((name, out))
        self.hostlab.playbook(json.dumps([{"hosts": self.vm.name, "gather_facts": False, "tasks": tasks}]))
        results = []
        for name, out in outs:
            result = json.loads(out.read_text())
            if bool(result.get("failed")) != expect_fail:
                raise AssertionError("module %s %s: %s" % (name, "failed" if result.get("failed") else "did not fail", json.dumps(result, indent=1)))
            results.append(result)
        return results

    def close(self):
        """Remove this test's namespaces, bridges, VLAN devices and files from the VM, so the
        next test starts from the booted state."""
        names = "python3 -c 'import json,sys;print(\" \".join(l[\"ifname\"] for l in json.load(sys.stdin)))'"
        script = ["for n in %s; do ip netns pids $n | xargs -r kill -9; ip netns del $n; done" % " ".join(self.namespaces) if self.namespaces else "true",
                  "for l in $(ip -j link show type bridge | %s); do ip link del $l; done" % names,
                  "for l in $(ip -j link show type vlan | %s); do ip link del $l; done" % names,
                  "rm -rf %s" % self.tmp]
        self.sh("; ".join(script), check=False)
        subprocess.run(["rm", "-rf", str(self.local)], check=False)
