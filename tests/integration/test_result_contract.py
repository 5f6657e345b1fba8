"""Results sized for fleets: `before` always, `after` only when something changed or would
(check mode: the planned state), `commands` always and empty when nothing ran, for every module
that changes a host, run for real in a test namespace (vmware_nat on its nat.conf fixture).

Without it a no-change re-run of port_forward with 1000 forwards carried the same 1000 forwards
twice (`before` and `after`) back to the controller from every hypervisor.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
N = 200


def forwards(n):
    return [{"host_port": str(10000 + i), "destination": "10.0.%d.%d" % (i // 250, 2 + i % 250), "destination_port": "80"}
            for i in range(n)]


def contract(run, first_args, change_args, label, after_is_read_back=True):
    """run(args, check_mode) -> result. Apply, re-run, then plan a change in check mode."""
    first = run(first_args, False)
    assert first["changed"] and "after" in first and first["commands"], (label, first)
    again = run(first_args, False)
    assert again["changed"] is False and again["commands"] == [], (label, again)
    assert "after" not in again and "before" in again, (label, sorted(again))
    if after_is_read_back:  # libvirt_network's `after` is the definition it sent, without libvirt's defaults
        assert again["before"] == first["after"], label
    planned = run(change_args, True)
    assert planned["changed"] and planned["commands"] and "after" in planned, (label, planned)
    assert planned["after"] != planned["before"], label
    print("%s: result %d bytes when applied, %d on a no-change re-run" % (label, len(json.dumps(first)), len(json.dumps(again))))
    return first, again, planned


def test_netfilter_modules(lab):
    hv = lab.ns("hv")
    common = dict(backend="nftables", persist=False, lock_file=str(lab.tmp / "lock"))
    first, again, planned = contract(
        lambda args, check: lab.module(hv, "port_forward", dict(common, **args), check_mode=check),
        {"config": forwards(N)}, {"config": forwards(N + 1)}, "port_forward (%d forwards)" % N)
    assert len(first["after"]) == len(again["before"]) == N and len(planned["after"]) == N + 1
    # the re-run's result is about half of the first: `before` alone, not `before` and `after`
    assert len(json.dumps(again)) < 0.75 * len(json.dumps(dict(again, after=again["before"])))
    contract(lambda args, check: lab.module(hv, "masquerade", dict(common, **args), check_mode=check),
             {"config": [{"source": "10.0.0.0/24"}]}, {"config": [{"source": "10.1.0.0/24"}]}, "masquerade")


def test_ip_forward(lab):
    hv = lab.ns("hv")
    paths = dict(sysctl_file=str(lab.tmp / "sysctl.d" / "90-hn.conf"), modules_load_file=str(lab.tmp / "modules-load.d" / "hn.conf"))
    contract(lambda args, check: lab.module(hv, "ip_forward", dict(paths, **args), check_mode=check),
             {"ipv4": True}, {"ipv4": True, "ipv6": True}, "ip_forward")


def test_bridge(lab):
    hv = lab.ns("hv")
    contract(lambda args, check: lab.module(hv, "bridge", dict(args, persist="none"), check_mode=check),
             {"name": "br0", "addresses": ["10.20.0.1/24"]}, {"name": "br0", "addresses": ["10.20.0.1/24"], "mtu": 1400}, "bridge")


def test_vmware_nat(lab):
    conf = lab.tmp / "vmnet8" / "nat" / "nat.conf"
    conf.parent.mkdir(parents=True)
    shutil.copy(TESTS / "unit" / "fixtures" / "vmware" / "nat.conf", conf)
    env = {"PATH": "%s:%s" % (TESTS / "fixtures" / "vmware", os.environ["PATH"]), "FAKE_VMWARE_LOG": str(lab.tmp / "calls.log")}
    forward = {"host_port": 8080, "guest_ip": "192.168.79.130", "guest_port": 80}
    contract(lambda args, check: lab.module(None, "vmware_nat", dict(args, path=str(conf)), env=env, check_mode=check),
             {"port_forwards": [forward]}, {"port_forwards": [forward, dict(forward, host_port=8081)]}, "vmware_nat")


def test_libvirt_modules(lab):
    from libvirt_lab import libvirt_host

    with libvirt_host(lab) as (host, _upstream):
        network = dict(name="rc", bridge={"name": "virbr78"}, ips=[{"address": "10.78.0.1", "prefix": 24}])
        contract(lambda args, check: host.module("libvirt_network", args, check_mode=check),
                 network, dict(network, mtu=1400), "libvirt_network", after_is_read_back=False)
        host.virsh(["define", "/dev/stdin"], input=(
            "<domain type='qemu'><name>rc1</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>"
            "<devices><interface type='network'><source network='rc'/><model type='virtio'/></interface></devices></domain>"))
        nic = dict(domain="rc1", network="rc", queues=2)
        contract(lambda args, check: host.module("libvirt_interface", args, check_mode=check),
                 nic, dict(nic, queues=4), "libvirt_interface")
