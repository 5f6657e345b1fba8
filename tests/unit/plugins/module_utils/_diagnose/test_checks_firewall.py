"""input_path, outbound_path, neighbours and the one vocabulary of check names, from fixtures."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose import module as diagnose_module
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_firewall import (
    check_input_path,
    check_outbound_path,
)
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_host import check_neighbours
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.module import CHECK_NAMES, run_checks

DIAGNOSE = Path(diagnose_module.__file__).parent

NET = {"name": "default", "source": "libvirt", "bridge": "virbr0", "active": True, "forward_mode": "nat", "dns_enabled": True,
       "ips": [{"address": "192.168.122.1", "prefix": 24, "dhcp_ranges": [{"start": "192.168.122.2", "end": "192.168.122.254"}],
                "dhcp_hosts": []}], "leases": []}
FORWARD_OK = ("-A FORWARD -d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
              "-A FORWARD -s 192.168.122.0/24 -i virbr0 -j ACCEPT\n")


def facts_with(save, networks=None, default_dev="eth0"):
    chains = nf.chains_from_save(save, "ip", "nft")
    return {"networks": copy.deepcopy(networks or [NET]), "default_route_dev": default_dev,
            "chains": {" ".join(key): body for key, body in chains.items()}}


def save(input_policy="ACCEPT", forward_policy="ACCEPT", rules=""):
    return "*filter\n:INPUT %s [0:0]\n:FORWARD %s [0:0]\n:OUTPUT ACCEPT [0:0]\n%sCOMMIT\n" % (input_policy, forward_policy, rules)


def by_subject(findings):
    return {f["subject"]: f for f in findings}


def test_input_policy_drop_blocks_dns_dhcp_and_ping_and_names_the_rule_and_fix():
    found = by_subject(check_input_path(facts_with(save("DROP"))))
    assert set(found) == {"DNS to 192.168.122.1 on virbr0", "DNS over TCP to 192.168.122.1 on virbr0",
                          "DHCP to 192.168.122.1 on virbr0", "ping to 192.168.122.1 on virbr0"}
    dns = found["DNS to 192.168.122.1 on virbr0"]
    assert dns["status"] == "fail" and "policy of ip filter INPUT" in dns["summary"]
    assert dns["fix"] == "iptables -t filter -I INPUT 1 -i virbr0 -p udp --dport 53 -j ACCEPT"
    assert found["DHCP to 192.168.122.1 on virbr0"]["fix"].endswith("-p udp --dport 67 -j ACCEPT")
    assert found["ping to 192.168.122.1 on virbr0"]["fix"] == "iptables -t filter -I INPUT 1 -i virbr0 -p icmp -j ACCEPT"


def test_input_accepted_by_libvirt_style_rules_is_ok_and_a_reject_rule_is_named():
    rules = ("-A INPUT -i virbr0 -p udp -m udp --dport 53 -j ACCEPT\n-A INPUT -i virbr0 -p tcp -m tcp --dport 53 -j ACCEPT\n"
             "-A INPUT -i virbr0 -p udp -m udp --dport 67 -j ACCEPT\n-A INPUT -i virbr0 -p icmp -j ACCEPT\n")
    assert {f["status"] for f in check_input_path(facts_with(save("DROP", rules=rules)))} == {"ok"}
    rejecting = save(rules="-A INPUT -i virbr0 -p udp --dport 53 -j REJECT\n")
    bad = [f for f in check_input_path(facts_with(rejecting)) if f["status"] != "ok"]
    assert [f["subject"] for f in bad] == ["DNS to 192.168.122.1 on virbr0"]
    assert "rejected by iptables-nft -t filter INPUT: -i virbr0 -p udp --dport 53 -j REJECT" in bad[0]["summary"]


def test_input_drop_in_ufw_chains_gets_a_ufw_fix():
    text = ("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:ufw-before-input - [0:0]\n"
            ":ufw-user-input - [0:0]\n-A INPUT -j ufw-before-input\n-A ufw-before-input -j ufw-user-input\n"
            "-A ufw-user-input -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    found = by_subject(check_input_path(facts_with(text)))
    assert found["DNS to 192.168.122.1 on virbr0"]["fix"] == "ufw allow in on virbr0 proto udp to any port 53"
    assert "before.rules" in found["ping to 192.168.122.1 on virbr0"]["fix"]
    (out,) = check_outbound_path(facts_with(text))
    assert out["status"] == "fail" and out["fix"] == "ufw route allow in on virbr0 out on eth0"


def test_native_nft_input_drop_gets_an_nft_fix():
    document = {"nftables": [
        {"chain": {"family": "inet", "table": "filter", "name": "input", "hook": "input", "prio": 0, "type": "filter",
                   "policy": "drop"}},
        {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 4, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": None}]}},
    ]}
    chains = nf.chains_from_nft(document)
    facts = {"networks": [copy.deepcopy(NET)], "default_route_dev": "eth0",
             "chains": {" ".join(key): body for key, body in chains.items()}}
    dns = by_subject(check_input_path(facts))["DNS to 192.168.122.1 on virbr0"]
    assert dns["status"] == "fail" and dns["fix"] == 'nft insert rule inet filter input iifname "virbr0" udp dport 53 accept'


def test_outbound_forward_drop_then_new_allowed_but_replies_dropped_then_ok():
    (bad,) = check_outbound_path(facts_with(save(forward_policy="DROP")))
    assert bad["status"] == "fail" and "outbound connections are dropped by policy of ip filter FORWARD" in bad["summary"]
    assert bad["fix"] == "iptables -t filter -I FORWARD 1 -i virbr0 -s 192.168.122.0/24 -j ACCEPT"
    (replies,) = check_outbound_path(facts_with(save(forward_policy="DROP", rules="-A FORWARD -s 192.168.122.0/24 -i virbr0 -j ACCEPT\n")))
    assert replies["status"] == "fail" and "replies" in replies["summary"] and "RELATED,ESTABLISHED" in replies["fix"]
    (good,) = check_outbound_path(facts_with(save(forward_policy="DROP", rules=FORWARD_OK)))
    assert good["status"] == "ok", good


def test_outbound_is_not_asked_of_an_isolated_or_bridged_network():
    isolated = dict(NET, forward_mode=None)
    assert check_outbound_path(facts_with(save(forward_policy="DROP"), [isolated])) == []


def test_neighbours_failed_and_incomplete_are_named():
    facts = {"networks": [copy.deepcopy(NET)], "neighbours": {"virbr0": [
        {"dst": "192.168.122.10", "lladdr": "52:54:00:00:00:10", "state": ["REACHABLE"]},
        {"dst": "192.168.122.77", "lladdr": None, "state": ["FAILED"]},
        {"dst": "192.168.122.78", "lladdr": None, "state": ["INCOMPLETE"]}]}}
    (bad,) = check_neighbours(facts)
    assert bad["status"] == "warn" and "192.168.122.77, 192.168.122.78" in bad["summary"] and len(bad["evidence"]) == 3
    facts["neighbours"]["virbr0"] = facts["neighbours"]["virbr0"][:1]
    assert check_neighbours(facts)[0]["status"] == "ok"


def _finding_names_in_source():
    """Every literal check name passed to finding(...) in the diagnose package."""
    names = set()
    for path in DIAGNOSE.glob("checks_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "finding" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
    return names


def test_one_vocabulary_every_finding_name_is_a_checks_choice():
    names = _finding_names_in_source()
    assert {"bridge_exists", "bridge_up", "bridge_ports", "bridge_mtu", "input_path", "outbound_path"} <= names
    assert names <= set(CHECK_NAMES), names - set(CHECK_NAMES)
    assert set(diagnose_module.ARGUMENT_SPEC["checks"]["choices"]) == set(CHECK_NAMES)


@pytest.mark.parametrize("checks, expected", [
    (["bridge_mtu"], {"bridge_mtu"}),
    (["bridge_up", "neighbours"], {"bridge_up", "neighbours"}),
    (["bridge"], {"bridge_exists", "bridge_up", "bridge_ports", "bridge_mtu"}),
])
def test_checks_option_selects_by_the_names_results_use(checks, expected):
    facts = facts_with(save())
    facts["links"] = {"virbr0": {"up": True, "operstate": "UP", "mtu": 1500, "master": None, "kind": "bridge"},
                      "vnet0": {"up": True, "operstate": "UP", "mtu": 1500, "master": "virbr0", "kind": "tun"}}
    facts["neighbours"] = {"virbr0": []}
    assert {f["check"] for f in run_checks(facts, {"checks": checks, "drop_threshold": 0})} == expected


def _size_probe(small, large, tcp):
    def q(transport, payload, result):
        rcode, size, tc = result
        return {"transport": transport, "payload": payload, "rcode": rcode, "bytes": size, "truncated": tc}
    return {"server": "203.0.113.54", "udp_small": q("udp", 1232, small), "udp_large": q("udp", 4096, large),
            "tcp": q("tcp", 4096, tcp)}


def test_edns_size_beyond_the_default_fragments_dropped_and_fitting():
    from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_dns import check_edns_size

    net = dict(copy.deepcopy(NET), dnsmasq_options=["log-queries"])
    facts = {"networks": [net], "dns_names": {"large": "big.example"},
             "large_probes": [_size_probe(("NOERROR", 1200, True), ("NOERROR", 2100, False), ("NOERROR", 2100, False))]}
    (bad,) = check_edns_size(facts)
    assert bad["status"] == "warn" and "2100 bytes, more than edns-packet-max 1232" in bad["summary"]
    assert bad["fix_module"]["args"] == {"name": "default", "dnsmasq_options": ["log-queries", "edns-packet-max=4096"]}
    net["dnsmasq_options"] = ["edns-packet-max=4096"]
    assert check_edns_size(facts)[0]["status"] == "ok"
    facts["large_probes"] = [_size_probe(("NOERROR", 1200, True), ("TIMEOUT", None, None), ("NOERROR", 2100, False))]
    (frag,) = check_edns_size(facts)
    assert frag["status"] == "warn" and "drops IP fragments" in frag["summary"] and frag["fix_module"] is None
    assert check_edns_size({"networks": [net], "dns_names": {}})[0]["summary"].startswith("not probed")
