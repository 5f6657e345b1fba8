"""The rules IR's pieces that a run uses instead of whole compiles and decompiles (issue 14,
item 5): one forward's rules for the local-listener guard, the items of a rule list without the
unexplained rules, and the round trip that lets ``after`` come from the planned rules."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as ir

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
        "allowed_sources": st.sampled_from([["198.51.100.0/24"], ["203.0.113.7", "198.51.100.0/24"]]),
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
    """Valid, conflict-free forwards (a later forward of a taken port is dropped)."""
    kept = []
    for index, raw in enumerate(raws):
        candidate = kept + [_forward(index, raw)]
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
