"""diagnose's host firewall, neighbour and journal checks in namespaces: break the thing for
real (the guest's DNS or its way out stops working), see the check fail, apply its fix, see the
guest work again and the check pass.

The hypervisor is the netfilter topology's "hv" namespace (br0 10.0.0.1/24, guests g1 and g2).
"""

from __future__ import annotations

import shlex
import time

from libvirt_lab import dig
from netfilter_topology import GATEWAY, UPSTREAM, build
from netlab import sh
from test_diagnose import diagnose, only, start_dnsmasq

SUBNET = "10.0.0.0/24"


def run_fix(lab, ns, fix):
    """Run the command a finding proposes (an iptables line) in ``ns``, iptables-nft explicitly."""
    argv = shlex.split(fix)
    assert argv[0] == "iptables", fix
    lab.run(ns, ["iptables-nft"] + argv[1:])


def test_input_drop_of_guest_dns_is_found_and_fixed(lab):
    topo = build(lab)
    start_dnsmasq(lab, topo.hv)
    assert dig(lab, topo.g1, GATEWAY, "g2.lan")[0] != "TIMEOUT"
    lab.run(topo.hv, ["iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
    lab.run(topo.hv, ["iptables-nft", "-P", "INPUT", "DROP"])
    assert dig(lab, topo.g1, GATEWAY, "g2.lan")[0] == "TIMEOUT"

    found = {f["subject"]: f for f in only(diagnose(lab, topo.hv, ["input_path"]), "input_path")}
    udp = found["DNS to 10.0.0.1 on br0"]
    assert udp["status"] == "fail" and "dropped by policy of ip filter INPUT" in udp["summary"], udp
    assert {f["status"] for f in found.values()} == {"fail"}  # tcp 53, DHCP and ping too
    for subject in ("DNS to 10.0.0.1 on br0", "DNS over TCP to 10.0.0.1 on br0", "DHCP to 10.0.0.1 on br0",
                    "ping to 10.0.0.1 on br0"):
        run_fix(lab, topo.hv, found[subject]["fix"])
    assert {f["status"] for f in only(diagnose(lab, topo.hv, ["input_path"]), "input_path")} == {"ok"}
    assert dig(lab, topo.g1, GATEWAY, "g2.lan")[0] != "TIMEOUT"


def test_forward_drop_of_guest_outbound_traffic_is_found_and_fixed(lab):
    topo = build(lab)
    lab.route(topo.hv, "default", "via", UPSTREAM)
    lab.run(topo.hv, ["iptables-nft", "-t", "nat", "-A", "POSTROUTING", "-s", SUBNET, "-o", "eth0", "-j", "MASQUERADE"])
    lab.serve_tcp(topo.upstream, 443)
    assert lab.connect(topo.g1, UPSTREAM, 443, timeout=2) is not None
    lab.run(topo.hv, ["iptables-nft", "-P", "FORWARD", "DROP"])
    assert lab.connect(topo.g1, UPSTREAM, 443, timeout=1) is None

    (bad,) = only(diagnose(lab, topo.hv, ["outbound_path"]), "outbound_path")
    assert bad["status"] == "fail" and "outbound connections are dropped" in bad["summary"], bad
    run_fix(lab, topo.hv, bad["fix"])
    assert lab.connect(topo.g1, UPSTREAM, 443, timeout=1) is None  # out, but the replies are still dropped
    (replies,) = only(diagnose(lab, topo.hv, ["outbound_path"]), "outbound_path")
    assert replies["status"] == "fail" and "replies" in replies["summary"], replies
    run_fix(lab, topo.hv, replies["fix"])
    (good,) = only(diagnose(lab, topo.hv, ["outbound_path"]), "outbound_path")
    assert good["status"] == "ok", good
    assert lab.connect(topo.g1, UPSTREAM, 443) is not None


def test_failed_neighbour_is_found_and_gone_once_the_guest_answers(lab):
    topo = build(lab)
    missing = "10.0.0.77"
    lab.run(topo.hv, ["busybox", "ping", "-c", "1", "-W", "1", missing], check=False)
    deadline = time.monotonic() + 10
    while "FAILED" not in lab.run(topo.hv, ["ip", "neigh", "show", missing]).stdout and time.monotonic() < deadline:
        time.sleep(0.2)
    (bad,) = only(diagnose(lab, topo.hv, ["neighbours"]), "neighbours")
    assert bad["status"] == "warn" and missing in bad["summary"], bad
    lab.addr(topo.g1, "eth0", missing + "/24")  # the guest takes the address the host looks for
    assert lab.run(topo.hv, ["busybox", "ping", "-c", "1", "-W", "2", missing], check=False).returncode == 0
    (good,) = only(diagnose(lab, topo.hv, ["neighbours"]), "neighbours")
    assert good["status"] == "ok" and any(missing in e for e in good["evidence"]), good


def test_libvirtd_enobufs_in_the_journal_not_only_in_log_files(lab):
    """A private journald (its own /run in a mount namespace) holds libvirtd's message; no log
    file exists. Before, no log file read meant ok; now the journal is read too."""
    hv = lab.ns("hv")
    # ip netns exec mounts a fresh /sys without cgroups, which journald needs
    script = ("mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal /run/log/journal && "
              "mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec /lib/systemd/systemd-journald")
    journald = lab.spawn(hv, ["unshare", "-m", "--propagation", "private", "sh", "-c", script])
    enter = ["nsenter", "-t", str(journald.pid), "-n", "-m"]

    def journal_diagnose():
        args = {"libvirt": False, "probe_dns": False, "resolv_conf": str(lab.tmp / "resolv.conf"),
                "log_files": [str(lab.tmp / "no-such.log")], "checks": ["libvirtd_log"]}
        return only(lab.module(None, "diagnose", args, wrapper=enter), "libvirtd_log")

    deadline = time.monotonic() + 10
    while True:
        (first,) = journal_diagnose()
        if first["status"] == "ok" or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # journald not up yet: nothing to read
    assert first["status"] == "ok" and "journal" in first["evidence"][0], first
    sh(enter + ["systemd-cat", "-t", "libvirtd"],
       input="virNetlinkEventCallback:862 : nl_recv returned with error: No buffer space available\n")
    deadline = time.monotonic() + 10
    while True:
        found = journal_diagnose()
        if found[0]["status"] == "warn" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (bad,) = found
    assert bad["status"] == "warn" and bad["subject"] == "No buffer space available", bad
    assert "journal: " in bad["evidence"][0] and "rmem_max" in bad["fix"]
