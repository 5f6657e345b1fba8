# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The strict read-back of our own rules (rules.rule_of) on top of the tolerant readers of
foreign.py: one reading of iptables-save lines (nf.save_rule) serves the walk of everybody's
chains and, checked strictly, our own chains; the same check serves nft's JSON."""

from __future__ import annotations

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
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
