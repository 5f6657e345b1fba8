"""The forward-path walk over other owners' chains, from real `nft -j list ruleset` output of
libvirt-shaped and Docker-shaped iptables-nft rules and a firewalld-shaped table."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.hypervisor.network.plugins.module_utils import _coexist as coexist
from ansible_collections.hypervisor.network.plugins.module_utils import _forward_path as path

FIXTURES = Path(__file__).parent / "fixtures"


def load(name):
    return json.loads((FIXTURES / name).read_text())


def test_libvirt_reject_blocks_a_new_connection_into_its_bridge():
    packet = path.Packet(4, "tcp", "10.0.0.2", 80, iif="eth0", oif="br0")
    verdicts = path.check_packet(load("ruleset_libvirt.json"), packet)
    assert [(v.outcome, v.table, v.chain) for v in verdicts] == [("blocked", "filter", "FORWARD")]
    assert "LIBVIRT_FWI" in verdicts[0].evidence
    assert coexist._openable(verdicts[0])


def test_libvirt_leaves_traffic_to_other_interfaces_alone():
    packet = path.Packet(4, "tcp", "192.0.2.5", 80, iif="eth0", oif="eth1")
    assert path.check_packet(load("ruleset_libvirt.json"), packet) == []


def test_unknown_output_interface_is_unknown_not_pass():
    packet = path.Packet(4, "tcp", "10.0.0.2", 80, iif="eth0", oif=None)
    verdicts = path.check_packet(load("ruleset_libvirt.json"), packet)
    assert [v.outcome for v in verdicts] == ["unknown"]


def test_docker_drop_policy_blocks():
    packet = path.Packet(4, "udp", "10.0.0.2", 53, iif="eth0", oif="br0")
    verdicts = path.check_packet(load("ruleset_libvirt_docker.json"), packet)
    assert verdicts and verdicts[0].outcome == "blocked"
    assert coexist.detect_managers(load("ruleset_libvirt_docker.json")) == ["docker", "libvirt"]


def test_ipv6_packet_ignores_ip_tables():
    packet = path.Packet(6, "tcp", "fd00::2", 80, iif="eth0", oif="br0")
    assert path.check_packet(load("ruleset_libvirt.json"), packet) == []


def test_our_own_chains_are_not_counted_as_opening_the_path():
    ruleset = load("ruleset_libvirt.json")
    ruleset["nftables"].append({"chain": {"family": "ip", "table": "filter", "name": "HNET-PFA-FORWARD", "handle": 90}})
    ruleset["nftables"].append({"rule": {"family": "ip", "table": "filter", "chain": "HNET-PFA-FORWARD", "handle": 91, "expr": [{"accept": None}]}})
    forward_rules = [i for i in ruleset["nftables"] if "rule" in i and i["rule"]["chain"] == "FORWARD"]
    forward_rules[0]["rule"]["expr"] = [{"jump": {"target": "HNET-PFA-FORWARD"}}]
    ruleset["nftables"].append({"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 92, "expr": [{"jump": {"target": "LIBVIRT_FWI"}}]}})
    verdicts = path.check_packet(ruleset, path.Packet(4, "tcp", "10.0.0.2", 80, oif="br0"))
    assert [v.outcome for v in verdicts] == ["blocked"]


def test_firewalld_without_dnat_accept_blocks_and_is_not_openable():
    ruleset = load("ruleset_firewalld_old.json")
    verdicts = path.check_packet(ruleset, path.Packet(4, "tcp", "10.0.0.2", 80, oif="br0"))
    assert [(v.outcome, v.table) for v in verdicts] == [("blocked", "firewalld")]
    assert not coexist._openable(verdicts[0])
    assert coexist.detect_managers(ruleset) == ["firewalld"]


def test_firewalld_with_dnat_accept_passes():
    ruleset = load("ruleset_firewalld_old.json")
    rule = next(i["rule"] for i in ruleset["nftables"] if "rule" in i)
    rule["expr"] = [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"accept": None}]
    assert path.check_packet(ruleset, path.Packet(4, "tcp", "10.0.0.2", 80, oif="br0")) == []
