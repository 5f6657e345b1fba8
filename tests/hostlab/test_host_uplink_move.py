# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The safe uplink move on a real host whose SSH session rides the uplink: a Debian 12 VM reached
over its eth0 (198.51.100.x, default route via the lab's upstream), the bridge module run over
that very SSH connection by ansible-playbook.

First a move whose check target does not answer: the module moves eth0's address and default
route onto the bridge, gets no echo, rolls back and fails with a clear message, and SSH still
works, eth0 holding its address and route again. Then the move as users make it (the check
target is the moved default gateway): the task reports ok (changed), the address and route live
on the bridge, and a second SSH session held open across the move kept running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from hostlab.fixtures import bookworm_image, trixie_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import UPLINK_NET, HostLab
from hostlab.remote import HOST, RemoteLab

pytestmark = pytest.mark.hostlab

# A session that prints the time every 0.2 s for as long as it lives.
TICKER = "while :; do date +%s.%N; sleep 0.2; done"


def addressed(remote, dev):
    shown = json.loads(remote.run(HOST, ["ip", "-j", "addr", "show", "dev", dev]).stdout)
    return sorted("%s/%s" % (a["local"], a["prefixlen"]) for a in shown[0]["addr_info"] if a["family"] == "inet")


def default_routes(remote):
    return [(r.get("gateway"), r["dev"]) for r in json.loads(remote.run(HOST, ["ip", "-j", "-4", "route", "show", "default"]).stdout)]


def master(remote, dev):
    return json.loads(remote.run(HOST, ["ip", "-j", "link", "show", "dev", dev]).stdout)[0].get("master")


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_uplink_carrying_the_ssh_session_moves_and_rolls_back(request, suite):
    hostlab = HostLab(request.getfixturevalue("%s_image" % suite))
    ticker = None
    try:
        vm = hostlab.start(hostlab.add_vm())
        remote = RemoteLab(hostlab, vm)
        cidr = "%s/24" % vm.address
        gateway = UPLINK_NET + ".1"
        assert addressed(remote, "eth0") == [cidr] and default_routes(remote) == [(gateway, "eth0")]

        # 1. The check target is dead: moved, no answer, rolled back, SSH unharmed.
        failed = remote.module(HOST, "bridge", dict(name="br0", ports=[{"name": "eth0"}], persist="none",
                                                    uplink_check_target=UPLINK_NET + ".250", uplink_check_timeout=5),
                               expect_fail=True)
        assert "%s.250 did not answer within 5s after moving eth0 to br0; rolled back" % UPLINK_NET in failed["msg"], failed["msg"]
        assert any(c.startswith("rollback: ip -force -batch -") for c in failed["commands"]), failed["commands"]
        assert remote.sh("echo alive").stdout.strip() == "alive"  # a new SSH connection over the uplink
        assert addressed(remote, "eth0") == [cidr] and default_routes(remote) == [(gateway, "eth0")]
        assert master(remote, "eth0") is None
        assert remote.run(HOST, ["ip", "link", "show", "dev", "br0"], check=False).returncode != 0

        # 2. The move users make, with a second SSH session held open across it.
        ticks = hostlab.tmp / "ticks.log"
        with open(ticks, "w") as out:
            ticker = subprocess.Popen(["ip", "netns", "exec", hostlab.ns] + hostlab.ssh_argv(vm, TICKER), stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(ticks.read_text().split()) < 3:
            time.sleep(0.5)
        before = len(ticks.read_text().split())
        moved = remote.module(HOST, "bridge", dict(name="br0", ports=[{"name": "eth0"}], persist="none"))
        during = len(ticks.read_text().split())
        assert moved["changed"] is True and moved["uplink_check"] == "%s answered after the move" % gateway, moved
        assert addressed(remote, "br0") == [cidr] and addressed(remote, "eth0") == []
        assert default_routes(remote) == [(gateway, "br0")] and master(remote, "eth0") == "br0"
        time.sleep(3)
        assert ticker.poll() is None, "the session held open across the move ended: %s" % ticks.read_text()[-500:]
        after = len(ticks.read_text().split())
        assert before < during < after, (before, during, after)  # it ticked through the move and after it
        assert remote.sh("echo alive").stdout.strip() == "alive"
        assert remote.module(HOST, "bridge", dict(name="br0", ports=[{"name": "eth0"}], persist="none"))["changed"] is False
    finally:
        if ticker is not None and ticker.poll() is None:
            os.killpg(ticker.pid, signal.SIGKILL)
            ticker.wait(timeout=10)
        hostlab.close()
