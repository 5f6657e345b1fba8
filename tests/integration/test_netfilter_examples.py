"""The EXAMPLES of port_forward and masquerade run as written, and do what they say.

Each task of a module's EXAMPLES runs in order inside a hypervisor namespace whose uplink is
called eth0 and whose guests sit on 10.10.0.0/24 behind br0, as the examples assume. The only
arguments added are the persistence paths (into the test's temp dir, never /etc). After each
task, the kernel's rules are read back (state=gathered) and, where the example promises traffic,
traffic is sent.

    up   eth0 203.0.113.10/24, 198.51.100.10/24
      |
    hv   eth0 203.0.113.1/24, 198.51.100.1/24; br0 10.10.0.1/24, fd00:10::1/64
      |                       |
    web 10.10.0.10        dns 10.10.0.11
"""

from __future__ import annotations

import importlib

import pytest
import yaml
from netfilter_topology import persist_args

UPSTREAM, UPSTREAM_OFFICE, HV_UPLINK = "203.0.113.10", "198.51.100.10", "203.0.113.1"
WEB, DNS = "10.10.0.10", "10.10.0.11"


def examples(module_name):
    module = importlib.import_module("ansible_collections.hypervisor.network.plugins.modules.%s" % module_name)
    tasks = yaml.safe_load(module.EXAMPLES)
    fqcn = "hypervisor.network.%s" % module_name
    assert tasks and all(fqcn in task for task in tasks), "every example task calls %s" % fqcn
    return [(task["name"], task[fqcn] or {}) for task in tasks]


@pytest.fixture
def hv_lab(lab):
    up, hv, web, dns = lab.ns("up"), lab.ns("hv"), lab.ns("web"), lab.ns("dns")
    lab.veth(up, "eth0", hv, "eth0")
    for address in (UPSTREAM, UPSTREAM_OFFICE):
        lab.addr(up, "eth0", address + "/24")
    lab.addr(hv, "eth0", HV_UPLINK + "/24")
    lab.addr(hv, "eth0", "198.51.100.1/24")
    lab.run(hv, ["ip", "link", "add", "br0", "type", "bridge"])
    lab.run(hv, ["ip", "link", "set", "br0", "up"])
    lab.addr(hv, "br0", "10.10.0.1/24")
    lab.run(hv, ["ip", "-6", "addr", "add", "fd00:10::1/64", "dev", "br0", "nodad"])
    for guest, address, port in ((web, WEB, "vweb"), (dns, DNS, "vdns")):
        lab.veth(guest, "eth0", hv, port)
        lab.run(hv, ["ip", "link", "set", port, "master", "br0"])
        lab.addr(guest, "eth0", address + "/24")
        lab.route(guest, "default", "via", "10.10.0.1")
    lab.sysctl(hv, "net.ipv4.ip_forward", 1)
    return lab, {"up": up, "hv": hv, "web": web, "dns": dns}


def run_example(lab, hv, module_name, args):
    return lab.module(hv, module_name, dict(args, **persist_args(lab)))


def gathered(lab, hv, module_name, backend="nftables"):
    return lab.module(hv, module_name, dict(state="gathered", backend=backend))["gathered"]


def test_port_forward_examples(hv_lab):
    lab, ns = hv_lab
    lab.serve_tcp(ns["web"], 80)
    lab.serve_tcp(ns["web"], 22)
    lab.serve_tcp(ns["dns"], 53)
    steps = examples("port_forward")
    assert len(steps) == 4, "update this test with the examples: %s" % [step[0] for step in steps]
    assert lab.connect(ns["up"], HV_UPLINK, 8080) is None

    # 1: the guest's web server on the host's port 8080, hairpin on
    result = run_example(lab, ns["hv"], "port_forward", steps[0][1])
    assert result["changed"] and result["backend"] == "nftables"
    assert [(f["host_port"], f["destination"], f["destination_port"]) for f in gathered(lab, ns["hv"], "port_forward")] == [("8080", WEB, "80")]
    assert lab.connect(ns["up"], HV_UPLINK, 8080) == "peer=%s" % UPSTREAM
    # hairpin: the other guest uses the host's public address too
    assert lab.connect(ns["dns"], HV_UPLINK, 8080) is not None

    # 2: DNS over TCP and UDP, only from the office network (merged: the web forward stays)
    result = run_example(lab, ns["hv"], "port_forward", steps[1][1])
    assert result["changed"]
    have = {(f["protocol"], f["host_port"]) for f in gathered(lab, ns["hv"], "port_forward")}
    assert have == {("tcp", "8080"), ("both", "5353")}
    assert lab.connect(ns["up"], HV_UPLINK, 5353, source=UPSTREAM_OFFICE) == "peer=%s" % UPSTREAM_OFFICE
    assert lab.connect(ns["up"], HV_UPLINK, 5353, source=UPSTREAM, timeout=1.5) is None

    # 3: overridden: only the ssh forward is left, and it works; 8080 no longer does
    result = run_example(lab, ns["hv"], "port_forward", steps[2][1])
    assert result["changed"]
    assert [(f["host_port"], f["destination"]) for f in gathered(lab, ns["hv"], "port_forward")] == [("2222", WEB)]
    assert lab.connect(ns["up"], HV_UPLINK, 2222) == "peer=%s" % UPSTREAM
    assert lab.connect(ns["up"], HV_UPLINK, 8080, timeout=1.5) is None

    # 4: rendered: iptables lines for 8443, and nothing on the host changed
    before = lab.run(ns["hv"], ["nft", "list", "ruleset"]).stdout
    result = run_example(lab, ns["hv"], "port_forward", steps[3][1])
    assert not result["changed"] and result["commands"] == []
    assert any("8443" in line and "DNAT" in line for line in result["rendered"]), result["rendered"]
    assert lab.run(ns["hv"], ["nft", "list", "ruleset"]).stdout == before

    # run again as written, the overriding example changes nothing
    assert not run_example(lab, ns["hv"], "port_forward", steps[2][1])["changed"]


def test_masquerade_examples(hv_lab):
    lab, ns = hv_lab
    lab.serve_tcp(ns["up"], 9000)
    steps = examples("masquerade")
    assert len(steps) == 4, "update this test with the examples: %s" % [step[0] for step in steps]
    # upstream has no route to 10.10.0.0/24: without masquerade the guest gets no answer
    assert lab.connect(ns["web"], UPSTREAM, 9000, timeout=1.5) is None

    # 1: the guests reach the outside through eth0, seen as the host
    result = run_example(lab, ns["hv"], "masquerade", steps[0][1])
    assert result["changed"]
    assert [(r["source"], r.get("out_interface")) for r in gathered(lab, ns["hv"], "masquerade")] == [("10.10.0.0/24", "eth0")]
    assert lab.connect(ns["web"], UPSTREAM, 9000) == "peer=%s" % HV_UPLINK

    # 2: overridden: exactly the IPv4 and the IPv6 rule
    result = run_example(lab, ns["hv"], "masquerade", steps[1][1])
    assert result["changed"]
    have = {(r["source"], r.get("out_interface")) for r in gathered(lab, ns["hv"], "masquerade")}
    assert have == {("10.10.0.0/24", None), ("fd00:10::/64", "eth0")}
    assert lab.connect(ns["web"], UPSTREAM, 9000) == "peer=%s" % HV_UPLINK
    assert not run_example(lab, ns["hv"], "masquerade", steps[1][1])["changed"]

    # 3: gathered: what is there, nothing changed
    result = run_example(lab, ns["hv"], "masquerade", steps[2][1])
    assert not result["changed"] and len(result["gathered"]) == 2

    # 4: deleted: no rule of this module is left, and the guest is cut off again
    result = run_example(lab, ns["hv"], "masquerade", steps[3][1])
    assert result["changed"]
    assert gathered(lab, ns["hv"], "masquerade") == []
    assert lab.connect(ns["web"], UPSTREAM, 9000, timeout=1.5) is None
