# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The safe uplink move: the host's addresses and routes go from eno1 to the bridge in one step,
a ping to the gateway keeps answering, and a move to a dead gateway is rolled back."""

from __future__ import annotations

import json
import os
import time

from bridge_lab import addresses, guests, link

from netlab import COLLECTIONS, PYTHON

# A pinger in the hypervisor namespace: one line per probe, "TIME 1" answered, "TIME 0" not.
PINGER = (
    "import sys,time\n"
    "from ansible_collections.hypervisor.network.plugins.module_utils._bridge.uplink import answers\n"
    "out=open(sys.argv[2],'a',buffering=1)\n"
    "while True:\n"
    "    out.write('%.3f %d\\n'%(time.time(), answers(sys.argv[1], 0.2, interval=0.2)))\n"
)


def uplink_host(lab, gateway="10.9.0.1"):
    """hv's eno1 cabled to an upstream namespace; hv's addresses and default routes on eno1."""
    hv, up = lab.ns("hv"), lab.ns("up")
    lab.veth(hv, "eno1", up, "eth0")
    lab.addr(up, "eth0", "10.9.0.1/24")
    lab.addr(up, "eth0", "fd00:9::1/64")
    lab.addr(hv, "eno1", "10.9.0.2/24")
    lab.addr(hv, "eno1", "fd00:9::2/64")
    lab.route(hv, "default", "via", gateway)
    lab.route(hv, "default", "via", "fd00:9::1")
    return hv, up


def routes(lab, ns, family):
    return json.loads(lab.run(ns, ["ip", "-j", family, "route", "show", "default"]).stdout)


def test_uplink_move_keeps_the_ping_alive(lab):
    hv, up = uplink_host(lab)
    (guest,) = guests(lab, hv, 1, subnet="10.9.0")  # on the uplink's segment once bridged
    log = lab.tmp / "ping.log"
    lab.spawn(hv, [PYTHON, "-c", PINGER, "10.9.0.1", str(log)], env=dict(os.environ, PYTHONPATH=str(COLLECTIONS)))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and " 1" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    started = time.time()

    args = dict(name="br0", ports=[{"name": "eno1"}, {"name": "vnet0"}], persist="none")
    planned = lab.module(hv, "bridge", args, check_mode=True)
    assert "uplink_check" not in planned and addresses(lab, hv, "eno1") == ["10.9.0.2/24", "fd00:9::2/64"]
    assert planned["after"]["addresses"] == ["10.9.0.2/24", "fd00:9::2/64"]
    moved = lab.module(hv, "bridge", args)
    finished = time.time()
    assert moved["commands"] == planned["commands"]
    time.sleep(1.5)

    assert moved["uplink_check"] == "10.9.0.1 answered after the move"
    batch = [c for c in moved["commands"] if c.startswith("ip -batch -")]
    assert len(batch) == 1 and "route replace default via 10.9.0.1 dev br0" in batch[0]
    assert addresses(lab, hv, "br0") == ["10.9.0.2/24", "fd00:9::2/64"] and addresses(lab, hv, "eno1") == []
    assert [r["dev"] for r in routes(lab, hv, "-4") + routes(lab, hv, "-6")] == ["br0", "br0"]

    probes = [line.split() for line in log.read_text().splitlines()]
    before = [ok for stamp, ok in probes if float(stamp) < started]
    during = [ok for stamp, ok in probes if started <= float(stamp) <= finished + 1.5]
    after = [ok for stamp, ok in probes if float(stamp) > finished + 0.5]
    assert "1" in before and after and set(after) == {"1"}, probes
    assert during.count("0") <= 3, "the move lost more than 3 probes in a row: %s" % during

    lab.serve_tcp(up, 7002)  # the guest on the bridge reaches upstream through the moved uplink
    assert lab.connect(guest, "10.9.0.1", 7002) == "peer=10.9.0.11"
    assert lab.module(hv, "bridge", args)["changed"] is False


def test_move_to_a_dead_gateway_rolls_back(lab):
    hv, _up = uplink_host(lab, gateway="10.9.0.77")  # nobody answers there
    before_v4, before_v6 = routes(lab, hv, "-4"), routes(lab, hv, "-6")

    failed = lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "eno1"}], uplink_check_timeout=2, persist="none"),
                        expect_fail=True)
    assert "10.9.0.77 did not answer within 2s after moving eno1 to br0; rolled back" in failed["msg"]
    assert any(c.startswith("rollback: ip -force -batch -") for c in failed["commands"])
    assert link(lab, hv, "br0") is None
    eno1 = link(lab, hv, "eno1")
    assert eno1.get("master") is None and not eno1.get("ifalias")
    assert addresses(lab, hv, "eno1") == ["10.9.0.2/24", "fd00:9::2/64"]
    assert routes(lab, hv, "-4") == before_v4 and routes(lab, hv, "-6") == before_v6


def test_explicit_check_target(lab):
    hv, up = uplink_host(lab)
    lab.addr(up, "eth0", "10.9.0.5/24")
    moved = lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "eno1"}], uplink_check_target="10.9.0.5", persist="none"))
    assert moved["uplink_check"] == "10.9.0.5 answered after the move"
    bad = lab.module(hv, "bridge", dict(name="br1", uplink_check_target="not-an-ip", persist="none"), expect_fail=True)
    assert bad["field"] == "uplink_check_target"


def test_failed_move_onto_an_existing_bridge_restores_it(lab):
    hv, _up = uplink_host(lab, gateway="10.9.0.77")
    guests(lab, hv, 1, subnet="10.9.0")
    lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "vnet0"}], addresses=["10.30.0.1/24"], persist="none"))
    before = lab.module(hv, "bridge", dict(name="br0", persist="none"))["before"]  # no change: `before` is the state

    lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "vnet0"}, {"name": "eno1"}], mtu=1400, stp=True, forward_delay=2,
                                  uplink_check_timeout=2, persist="none"), expect_fail=True)
    assert lab.module(hv, "bridge", dict(name="br0", persist="none"))["before"] == before
    assert addresses(lab, hv, "eno1") == ["10.9.0.2/24", "fd00:9::2/64"]
    assert link(lab, hv, "eno1")["mtu"] == 1500 and not link(lab, hv, "eno1").get("ifalias")
