# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The strict read-back of our own rules (rules.rule_of) on top of the tolerant readers of
foreign.py: one reading of iptables-save lines (nf.save_rule) serves the walk of everybody's
chains and, checked strictly, our own chains; the same check serves nft's JSON.

And the pieces a run uses instead of whole compiles and decompiles (issue 14, item 5): one
forward's rules for the local-listener guard, the items of a rule list without the unexplained
rules, and the round trip that lets ``after`` come from the planned rules."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as ir

FORWARD_LINE = ('-A HNET-PF-PREROUTING -s 192.0.2.0/24 -d 198.51.100.7/32 -i eth0 -p tcp -m tcp --dport 8080:8081 '
                '-m comment --comment "web a" -j DNAT --to-destination 10.0.0.2:80-81')
FORWARD_RULE = ir.Rule(chain=ir.PREROUTING, family=4, action=ir.DNAT, iif="eth0", saddr=("192.0.2.0/24",),
                       daddr="198.51.100.7", proto="tcp", dport=(8080, 8081), to_addr="10.0.0.2",
                       to_port=(80, 81), comment="web a")
# The same rule as `nft -j` lists it from our table.
FORWARD_NFT = {"family": "inet", "table": "hypervisor_network_port_forward", "chain": "prerouting", "handle": 7,
               "comment": "web a", "expr": [
                   {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}},
                   {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                              "right": {"prefix": {"addr": "192.0.2.0", "len": 24}}}},
                   {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                              "right": "198.51.100.7"}},
                   {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                              "right": {"range": [8080, 8081]}}},
                   {"counter": {"packets": 0, "bytes": 0}},
                   {"dnat": {"family": "ip", "addr": "10.0.0.2", "port": {"range": [80, 81]}}}]}


def tokens_of(line):
    tokens, complete = nf.split_line(line)
    assert complete
    return tokens[2:]


def test_one_rule_read_from_iptables_save_and_from_nft_json_is_one_rule():
    item = nf.save_rule(tokens_of(FORWARD_LINE))
    # the tolerant reading: what the walk sees of it
    assert ("iif", False, ["eth0"]) in item["matches"] and ("dport", False, [(8080, 8081)]) in item["matches"]
    assert item["nat"] == {"kind": "dnat", "addr": "10.0.0.2", "port": 80, "ports": (80, 81)}
    assert item["comment"] == "web a" and item["statements"] == ()
    # the strict check on top, the same for both formats
    assert ir.rule_of(ir.PREROUTING, 4, item, "text") == FORWARD_RULE
    assert ipt.parse_rule(ir.PREROUTING, 4, tokens_of(FORWARD_LINE)) == FORWARD_RULE
    assert ir.rule_of(ir.PREROUTING, 4, nf.nft_rule(FORWARD_NFT), "text") == FORWARD_RULE


@pytest.mark.parametrize("line, seen_by_the_walk", [
    # a negated interface: the walk honours the negation; we never write one
    ("-A HNET-PF-FORWARD ! -i eth0 -d 10.0.0.2/32 -j ACCEPT", ("iif", True, ["eth0"])),
    # a match of a module we never use: not understood by the walk, not ours either
    ("-A HNET-PF-FORWARD -d 10.0.0.2/32 -m mark --mark 0x1 -j ACCEPT", ("unknown", False, ["--mark"])),
    # a target parameter: kept as a statement
    ("-A HNET-MASQ-POSTROUTING -s 10.0.0.0/24 -j MASQUERADE --to-ports 1024-2000", None),
    # a verdict we never write
    ("-A HNET-PF-FORWARD -d 10.0.0.2/32 -j DROP", None),
])
def test_what_the_tolerant_reading_keeps_the_strict_check_refuses(line, seen_by_the_walk):
    tokens = tokens_of(line)
    item = nf.save_rule(tokens)  # read, never an error: another tool's rule of this shape is walked
    if seen_by_the_walk:
        assert seen_by_the_walk in item["matches"]
    rule = ir.rule_of(ir.FORWARD, 4, item, " ".join(tokens))
    assert rule.action == "unknown" and rule.comment == " ".join(tokens)
    assert ipt.parse_rule(ir.FORWARD, 4, tokens).action == "unknown"


def test_a_host_destination_reads_as_an_address_from_both_formats():
    """iptables-save prints a host as /32 (/128), nft as a plain address: our rules compare equal."""
    for line, family in (("-A F -d 10.0.0.2/32 -j ACCEPT", 4), ("-A F -d fd00::2/128 -j ACCEPT", 6)):
        rule = ipt.parse_rule(ir.FORWARD, family, tokens_of(line))
        assert rule.daddr == line.split()[3].split("/")[0] and rule.family == family
    negated = ipt.parse_rule(ir.FORWARD, 4, tokens_of("-A F ! -d 10.0.0.2/32 -j ACCEPT"))
    assert (negated.daddr, negated.daddr_negated) == ("10.0.0.2/32", True)


# Forwards of every shape the compiler knows: ranges, both protocols, IPv6, scopes, allowlists,
# hairpin with and without scope, comments; small port and address pools so that sets of them
# share destinations and ports (tcp and udp twins that read back as one forward of `both`).
_FORWARD = st.fixed_dictionaries(
    {
        "protocol": st.sampled_from(["tcp", "udp", "both"]),
        "host_port": st.sampled_from(["80", "8080", "60000-60002"]),
        "destination": st.sampled_from(["10.0.0.2", "10.0.0.3", "fd00:10::5"]),
    },
    optional={
        "in_interface": st.sampled_from(["eth0", "br-up"]),
        "comment": st.sampled_from(["web", "guest 'blue'"]),
        "hairpin": st.booleans(),
        "allowed_sources": st.sampled_from([["198.51.100.0/24"], ["203.0.113.7"], ["203.0.113.7", "198.51.100.0/24"]]),
        # two host ports to one target port: forwards whose FORWARD rules differ only in sources
        "destination_port": st.just("80"),
    },
)
CONNECTED = [ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("fd00:10::/64")]


def _forward(index, raw):
    raw = dict(raw)
    if ":" in raw["destination"]:
        raw.pop("allowed_sources", None)  # IPv4 sources with an IPv6 destination are refused
        if raw.get("hairpin"):
            raw["hairpin_sources"] = ["fd00:10::/64"]
    if raw["host_port"] == "60000-60002":
        raw["destination_port"] = "61000-61002"
    return model.complete_port_forward("config[%d]" % index, model.parse_port_forward(index, raw), None, CONNECTED)


def _forwards(raws):
    """Valid, conflict-free forwards, as the module's desired set has them: one per key (a later
    item replaces an earlier one of the same key) and a later forward of a taken port dropped."""
    kept = []
    for index, raw in enumerate(raws):
        fwd = _forward(index, raw)
        candidate = [other for other in kept if other.key != fwd.key] + [fwd]
        try:
            model.check_conflicts(candidate)
        except ValidationError:
            continue
        kept = candidate
    return model.sort_items(model.dedupe(kept))


def test_one_forwards_rules_in_the_order_they_are_written():
    """What the local-listener guard compares with the rules loaded, one forward at a time."""
    fwd = _forward(0, {"protocol": "both", "host_port": "8080", "destination": "10.0.0.2", "in_interface": "eth0",
                       "hairpin": True})
    rules = ir.port_forward_rules(fwd)
    chains = [ir.PREROUTING, ir.FORWARD, ir.FORWARD, ir.HAIRPIN_PREROUTING, ir.HAIRPIN_FORWARD, ir.OUTPUT, ir.POSTROUTING]
    assert [(r.proto, r.chain) for r in rules] == [(p, c) for p in ("tcp", "udp") for c in chains]
    assert rules[0].iif == "eth0" and rules[3].iif is None and rules[3].saddr == ("10.0.0.0/24",)
    assert set(rules) == set(ir.compile_port_forwards([fwd]))
    plain = _forward(0, {"host_port": "80", "destination": "10.0.0.3"})
    assert [r.chain for r in ir.port_forward_rules(plain)] == [ir.PREROUTING, ir.FORWARD, ir.FORWARD]


@settings(max_examples=300, deadline=None)
@given(st.lists(_FORWARD, max_size=6))
def test_planned_rules_read_back_as_themselves(raws):
    """``after`` is the items of the rules a run planned, not of a second listing after the
    apply: that is the same only if what is loaded reads back as exactly the planned rules. Here
    for the iptables backend, whose renderer and parser are both pure (the nftables one reads nft's
    JSON: tests/integration/test_port_forward.py compares ``after`` with the kernel's rules)."""
    rules = ir.compile_port_forwards(_forwards(raws))
    read = []
    for family in (4, 6):
        script = ipt.boot_script("port_forward", family, rules)
        read += ipt.parse_save("port_forward", family, script)[0] if script else []
    assert ir.canonical(read) == rules


def test_decompile_still_returns_the_rules_no_forward_explains():
    fwd = _forward(0, {"host_port": "80", "destination": "10.0.0.3"})
    stray = ir.Rule(chain=ir.FORWARD, family=4, action=ir.ACCEPT, daddr="10.9.9.9", proto="tcp", dport=(1, 1))
    rules = ir.compile_port_forwards([fwd])[1:] + [stray]  # its DNAT rule gone, a stray accept added
    items, unexplained = ir.decompile_port_forwards(rules)
    assert items == ir.port_forward_items(rules) == []
    assert unexplained == rules


def test_tcp_and_udp_twins_are_one_forward_of_both():
    """Why ``after`` is the items of the planned rules and not the task's items: two forwards
    that differ only in protocol are written as the rules of one forward of `both`, and that is
    what a read-back (and so the next run's ``before``) shows."""
    tcp, udp = (_forward(i, {"protocol": p, "host_port": "53", "destination": "10.0.0.3"}) for i, p in enumerate(("tcp", "udp")))
    assert [f.protocol for f in ir.port_forward_items(ir.compile_port_forwards([tcp, udp]))] == ["both"]


def test_masquerade_items_are_the_decompiled_items():
    items = [model.complete_masquerade(model.parse_masquerade(0, {"source": "10.0.0.0/24", "out_interface": "eth0"}))]
    rules = ir.compile_masquerades(items) + [ir.Rule(chain=ir.POSTROUTING, family=4, action=ir.ACCEPT)]
    assert ir.masquerade_items(rules) == ir.decompile_masquerades(rules)[0] == items
