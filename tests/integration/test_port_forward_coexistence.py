"""Forwards on hosts where libvirt, Docker or firewalld also filter forwarded traffic.

The other owners' rules are loaded with the real tools in the shapes those managers create
(libvirt 9 and Docker through iptables-nft, firewalld as its own nftables table). A test with a
real libvirtd is in test_libvirt_port_forward.py.
"""

from __future__ import annotations

import pytest
import systemd_exec
from netfilter_topology import BACKENDS, G1, HV_UPLINK, UPSTREAM, build, persist_args, ruleset

WEB = {"host_port": "8080", "destination": G1, "destination_port": "80"}

LIBVIRT_CHAINS = """*filter
:LIBVIRT_FWO - [0:0]
:LIBVIRT_FWI - [0:0]
:LIBVIRT_FWX - [0:0]
-A FORWARD -j LIBVIRT_FWX
-A FORWARD -j LIBVIRT_FWI
-A FORWARD -j LIBVIRT_FWO
-A LIBVIRT_FWX -i br0 -o br0 -j ACCEPT
-A LIBVIRT_FWI -d 10.0.0.0/24 -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A LIBVIRT_FWI -o br0 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWO -s 10.0.0.0/24 -i br0 -j ACCEPT
-A LIBVIRT_FWO -i br0 -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""

DOCKER_CHAINS = """*filter
:FORWARD DROP [0:0]
:DOCKER-USER - [0:0]
:DOCKER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -j DOCKER
-A DOCKER-USER -j RETURN
COMMIT
"""

FIREWALLD_TABLE = """table inet firewalld {
  chain filter_FORWARD {
    type filter hook forward priority filter + 10; policy accept;
    ct state { established, related } accept
    %s
    iifname "lo" accept
    ct state invalid drop
    reject with icmpx admin-prohibited
  }
}
"""

NFT_BACKENDS = ["nftables", "iptables-nft"]


def forward(lab, topo, name, config, **kwargs):
    args = dict(BACKENDS[name], config=config, **persist_args(lab))
    args.update(kwargs.pop("extra", {}))
    return lab.module(topo.hv, "port_forward", args, **kwargs)


def relibvirt(lab, topo):
    """What libvirt does on a network restart: its own chains emptied and refilled."""
    rules = [line for line in LIBVIRT_CHAINS.splitlines() if line.startswith("-A LIBVIRT_")]
    script = "*filter\n:LIBVIRT_FWO - [0:0]\n:LIBVIRT_FWI - [0:0]\n:LIBVIRT_FWX - [0:0]\n%s\nCOMMIT\n" % "\n".join(rules)
    lab.run(topo.hv, ["iptables-nft-restore", "--noflush"], input=script)


@pytest.mark.parametrize("name", NFT_BACKENDS)
def test_libvirt_rejects_are_opened_and_stay_open_after_its_restart(lab, name):
    topo = build(lab)
    lab.serve_tcp(topo.g1, 80)
    lab.run(topo.hv, ["iptables-nft-restore", "--noflush"], input=LIBVIRT_CHAINS)
    if name == "nftables":
        ignored = forward(lab, topo, name, [WEB], extra={"coexistence": "ignore"})
        assert [e["action"] for e in ignored["coexistence"] if e.get("outcome") == "blocked"] == ["none (reported only)"]
        assert lab.connect(topo.upstream, HV_UPLINK, 8080) is None, "baseline: libvirt's reject swallows the forward"

    opened = forward(lab, topo, name, [WEB])
    assert opened["changed"]
    assert {"managers": ["libvirt"]} in opened["coexistence"]
    assert any("opened" in e.get("action", "") for e in opened["coexistence"])
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) == "peer=%s" % UPSTREAM
    assert forward(lab, topo, name, [WEB])["changed"] is False

    relibvirt(lab, topo)
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) == "peer=%s" % UPSTREAM
    # libvirt's own chains were not edited by us.
    saved = lab.run(topo.hv, ["iptables-nft-save", "-t", "filter"]).stdout
    assert sorted(line for line in saved.splitlines() if line.startswith("-A LIBVIRT_")) == sorted(
        line for line in LIBVIRT_CHAINS.splitlines() if line.startswith("-A LIBVIRT_"))


@pytest.mark.parametrize("name", NFT_BACKENDS)
def test_docker_drop_policy_is_opened(lab, name):
    topo = build(lab)
    lab.serve_tcp(topo.g1, 80)
    lab.run(topo.hv, ["iptables-nft-restore", "--noflush"], input=DOCKER_CHAINS)
    result = forward(lab, topo, name, [WEB])
    assert {"managers": ["docker"]} in result["coexistence"]
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) == "peer=%s" % UPSTREAM


def test_policy_fail_refuses_before_changing_anything(lab):
    topo = build(lab)
    lab.run(topo.hv, ["iptables-nft-restore", "--noflush"], input=LIBVIRT_CHAINS)
    before = ruleset(lab, topo.hv)
    failed = forward(lab, topo, "nftables", [WEB], extra={"coexistence": "fail"}, expect_fail=True)
    assert "LIBVIRT_FWI" in failed["msg"] and "Nothing was changed" in failed["msg"]
    assert ruleset(lab, topo.hv) == before


def test_firewalld_reject_fails_with_the_commands_to_run(lab):
    topo = build(lab)
    lab.serve_tcp(topo.g1, 80)
    lab.run(topo.hv, ["nft", "-f", "-"], input=FIREWALLD_TABLE % "")
    before = ruleset(lab, topo.hv)
    failed = forward(lab, topo, "nftables", [WEB], expect_fail=True)
    assert "firewalld" in failed["msg"] and "firewall-cmd --permanent --new-policy hnet-forward" in failed["msg"]
    assert 'destination address="10.0.0.2" port port="80" protocol="tcp"' in failed["msg"]
    assert ruleset(lab, topo.hv) == before
    # firewalld 0.9 and later accept DNATed traffic in filter_FORWARD: nothing to open then.
    lab.run(topo.hv, ["nft", "delete", "table", "inet", "firewalld"])
    lab.run(topo.hv, ["nft", "-f", "-"], input=FIREWALLD_TABLE % "ct status dnat accept")
    result = forward(lab, topo, "nftables", [WEB])
    assert {"managers": ["firewalld"]} in result["coexistence"]
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) == "peer=%s" % UPSTREAM


# Docker on iptables-legacy: the same chains, but its FORWARD policy DROP lives in the kernel's
# legacy x_tables, which `nft list ruleset` does not show, and the kernel runs those hooks too.
LEGACY_DOCKER = DOCKER_CHAINS

# A plain DNAT and forward accept in nftables, with nothing in the legacy tables.
PLAIN_NFT_FORWARD = """table ip hnet_baseline {
  chain baseline_pre { type nat hook prerouting priority dstnat; tcp dport 8080 dnat to 10.0.0.2:80; }
  chain baseline_fwd { type filter hook forward priority filter; ct status dnat accept; }
}
"""


def legacy_rules(lab, ns):
    """Chains, policies and rules of the legacy tables, without counters."""
    lines = lab.run(ns, ["iptables-legacy-save"]).stdout.splitlines()
    return [line.rsplit(" [", 1)[0] if line.startswith(":") else line for line in lines if line.startswith(("-A", ":"))]


def test_legacy_docker_drop_policy_is_opened_in_the_legacy_tables(lab):
    topo = build(lab)
    lab.serve_tcp(topo.g1, 80)
    lab.run(topo.hv, ["iptables-legacy-restore", "--noflush"], input=LEGACY_DOCKER)
    # baseline: an nftables DNAT and accept alone do not get through the legacy FORWARD policy
    lab.run(topo.hv, ["nft", "-f", "-"], input=PLAIN_NFT_FORWARD)
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) is None, "baseline: legacy FORWARD DROP swallows the forward"
    lab.run(topo.hv, ["nft", "delete", "table", "ip", "hnet_baseline"])
    legacy_before = legacy_rules(lab, topo.hv)

    before = ruleset(lab, topo.hv)
    failed = forward(lab, topo, "nftables", [WEB], extra={"coexistence": "fail"}, expect_fail=True)
    assert "iptables-legacy table filter chain FORWARD, policy drop" in failed["msg"]
    assert "iptables-legacy -I FORWARD 1 -d 10.0.0.2 -p tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT" in failed["msg"]
    assert "Nothing was changed" in failed["msg"]
    assert ruleset(lab, topo.hv) == before and legacy_rules(lab, topo.hv) == legacy_before

    opened = forward(lab, topo, "nftables", [WEB])
    assert opened["changed"]
    assert {"managers": ["docker"]} in opened["coexistence"]
    (entry,) = [e for e in opened["coexistence"] if e.get("outcome") == "blocked"]
    assert entry["where"] == "iptables-legacy table filter chain FORWARD, policy drop"
    assert entry["action"] == "opened by our chain jumped to from the top of iptables-legacy FORWARD"
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) == "peer=%s" % UPSTREAM
    forward_rules = [line for line in legacy_rules(lab, topo.hv) if line.startswith("-A FORWARD ")]
    assert forward_rules[0] == "-A FORWARD -j HNET-PFA-FORWARD", "our chain first, ahead of Docker's"
    assert "HNET" not in lab.run(topo.hv, ["iptables-nft-save"]).stdout, "no iptables-nft companion was needed"
    files = opened["persisted"]["legacy_companion"]["file"]
    assert files == [str(lab.tmp / "persist" / "hypervisor-network-port-forward-accept.legacy-v4")]
    boot = (lab.tmp / "persist" / "hypervisor-network-port-forward-accept.legacy-v4").read_text()
    assert "-I FORWARD 1 -j HNET-PFA-FORWARD" in boot
    unit = (lab.tmp / "units" / "hypervisor-network-iptables.service").read_text()
    script = systemd_exec.exec_start(unit)[2]
    assert 'hypervisor-network-*.legacy-v4; do [ -e "$f" ] || continue; iptables-legacy-restore --noflush "$f"' in script

    again = forward(lab, topo, "nftables", [WEB])
    assert again["changed"] is False and again["commands"] == []

    removed = forward(lab, topo, "nftables", [], extra={"state": "overridden"})
    assert removed["changed"]
    assert legacy_rules(lab, topo.hv) == legacy_before, "the legacy companion is gone, Docker's chains untouched"
    assert not (lab.tmp / "persist" / "hypervisor-network-port-forward-accept.legacy-v4").exists()
    assert forward(lab, topo, "nftables", [], extra={"state": "overridden"})["changed"] is False
