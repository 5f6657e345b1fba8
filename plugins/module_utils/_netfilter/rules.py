# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend-neutral rule list between the model and nft / iptables text.

compile_*() turn model items into rules; decompile_*() turn rules read back from the host into
model items. Both backends render and parse this one representation, so idempotence is a
comparison of two rule lists and never of text.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.model import (
    PROTOCOLS,
    Masquerade,
    PortForward,
    dedupe,
    network_sort_key,
    rule_text,
    sort_items,
)

# Chains of the port-forward table; the hairpin_* chains are regular chains jumped from the
# base chains so that the rule's role can be told from where it stands.
PREROUTING = "prerouting"
OUTPUT = "output"
FORWARD = "forward"
POSTROUTING = "postrouting"
HAIRPIN_PREROUTING = "hairpin_prerouting"
HAIRPIN_FORWARD = "hairpin_forward"

ACCEPT = "accept"
DNAT = "dnat"
MASQUERADE = "masquerade"


@dataclass(frozen=True)
class Rule:
    chain: str
    family: int
    action: str
    iif: str | None = None
    oif: str | None = None
    saddr: tuple = ()
    daddr: str | None = None
    daddr_negated: bool = False
    daddr_local: bool = False
    proto: str | None = None
    dport: tuple | None = None
    sport: tuple | None = None
    ct_dnat: bool = False
    to_addr: str | None = None
    to_port: tuple | None = None
    comment: str | None = None


def writable(rule):
    """Could we have written ``rule``? A rule read back from our table whose strings we would
    refuse (edited by hand) is drift to rewrite, not an item to carry over and fail to render."""
    try:
        for value, interface in ((rule.iif, True), (rule.oif, True), (rule.comment, False)):
            if value is not None:
                rule_text("rule", value, interface=interface)
    except ValidationError:
        return False
    return True


def not_understood(rule):
    """How a rule read back that we did not write (action 'unknown') is shown in a diff: a
    comment line, valid in an nft script and skipped by iptables-restore, that cannot break out."""
    text = "".join(ch if ch.isprintable() else "?" for ch in rule.comment or "")
    return "# not understood, to be replaced: %s" % text


# -- our rule from the small form of foreign.py, for both backends' read-back --------------------


class _Unknown(Exception):
    pass


def plain_ipv4(text):
    """Is ``text`` an IPv4 address exactly as ipaddress prints it (four decimal octets, no
    leading zeros)? Then it needs no parsing to be normalised: nft prints every address of our
    table that way, and a listing of 1000 forwards holds 2000 distinct ones."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not (part.isascii() and part.isdigit()) or (part[0] == "0" and part != "0") or int(part) > 255:
            return False
    return True


@functools.lru_cache(maxsize=4096)
def _net_text(text):
    if plain_ipv4(text):
        return text + "/32"
    return str(ipaddress.ip_network(text, strict=False))


@functools.lru_cache(maxsize=4096)
def _host_or_net_text(text):
    """A destination as both backends write it: a host as a plain address (nft prints it so,
    iptables-save adds /32 or /128), a subnet as a network."""
    net = ipaddress.ip_network(text, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


@functools.lru_cache(maxsize=4096)
def _address_text(text):
    if plain_ipv4(text):
        return text
    return str(ipaddress.ip_address(text))


def _one(values):
    if len(values) != 1:
        raise _Unknown(values)
    return values[0]


def _port_range(value):
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, tuple) and len(value) == 2:
        return value
    raise _Unknown(value)


def _version(text):
    """4 or 6 of an address or network as nft prints it (only IPv6 has colons)."""
    return 6 if ":" in text else 4


def _apply_match(key, negated, values, fields):
    if key in ("iif", "oif") and not negated:
        value = _one(values)
        if not isinstance(value, str):
            raise _Unknown(value)
        fields[key] = value
    elif key == "nfproto" and not negated:
        fields["family"] = {"ipv4": 4, "ipv6": 6}[_one(values)]
    elif key == "proto" and not negated:
        fields["proto"] = _one(values)
    elif key == "saddr" and not negated:
        if any(not isinstance(value, str) for value in values):
            raise _Unknown(values)
        nets = [_net_text(value) for value in values]
        fields["saddr"] = tuple(nets if len(nets) == 1 else sorted(nets, key=network_sort_key))
        fields["family"] = _version(values[0])
    elif key == "daddr":
        value = _one(values)
        if not isinstance(value, str):
            raise _Unknown(value)
        fields["daddr"] = _net_text(value) if negated else _host_or_net_text(value)
        fields["daddr_negated"] = negated
        fields["family"] = _version(value)
    elif key in ("dport", "sport") and not negated:
        fields[key] = _port_range(_one(values))
    elif key == "fib_daddr_type" and not negated and values == ["local"]:
        fields["daddr_local"] = True
    elif key == "ct" and not negated and values == ["dnat"]:
        fields["ct_dnat"] = True
    else:
        raise _Unknown(key)


def rule_of(chain, family, item, text):
    """One of our rules, read by a tolerant reader of foreign.py (nf.nft_rule, nf.save_rule) into
    the small form, as a Rule: the strict check both backends read their own rules with. A rule
    of a shape we never write (or with strings we would refuse) comes back as a Rule with action
    'unknown' and ``text`` as its comment, so that the planner sees the drift and rewrites it.
    ``family`` is the rule's family where no address says it."""
    fields = {"chain": chain, "family": family, "comment": item["comment"]}
    try:
        for key, negated, values in item["matches"]:
            _apply_match(key, negated, values, fields)
        nat = item["nat"] or {}
        if item["statements"]:
            raise _Unknown(item["statements"])
        if item["verdict"] == "accept":
            fields["action"] = ACCEPT
        elif item["verdict"] == "nat" and nat["kind"] == "masquerade":
            fields["action"] = MASQUERADE
        elif item["verdict"] == "nat" and nat["kind"] == "dnat" and nat.get("addr"):
            fields["action"] = DNAT
            if nat.get("family"):
                fields["family"] = 4 if nat["family"] == "ip" else 6
            fields["to_addr"] = _address_text(nat["addr"])
            if nat["ports"]:
                fields["to_port"] = nat["ports"]
        else:
            raise _Unknown(item["verdict"])
        parsed = Rule(**fields)
    except (_Unknown, KeyError, TypeError, ValueError):
        parsed = None
    if parsed is None or not writable(parsed):
        return Rule(chain=chain, family=fields["family"], action="unknown", comment=text)
    return parsed


# -- compile / decompile -------------------------------------------------------------------------


def _host_dnat_rules(fwd, proto, chain, saddr, iif):
    return Rule(
        chain=chain, family=fwd.family, action=DNAT, iif=iif, saddr=saddr,
        daddr=fwd.host_address, daddr_local=fwd.host_address is None,
        proto=proto, dport=fwd.host_port, to_addr=fwd.destination,
        to_port=None if fwd.destination_port == fwd.host_port else fwd.destination_port,
        comment=fwd.comment,
    )


def _accept_rule(fwd, proto, chain, saddr, iif):
    return Rule(
        chain=chain, family=fwd.family, action=ACCEPT, iif=iif, saddr=saddr,
        daddr=fwd.destination, proto=proto, dport=fwd.destination_port, ct_dnat=True,
        comment=fwd.comment,
    )


def _reply_rule(fwd, proto, chain):
    """The guest's answers: without this, a FORWARD policy of DROP (Docker sets one) lets the
    connection in and its replies not out."""
    host_bits = 32 if fwd.family == 4 else 128
    return Rule(
        chain=chain, family=fwd.family, action=ACCEPT, saddr=("%s/%d" % (fwd.destination, host_bits),),
        proto=proto, sport=fwd.destination_port, ct_dnat=True, comment=fwd.comment,
    )


def port_forward_rules(fwd):
    """The rules of one forward, in the order they are written (before the canonical grouping):
    what compile_port_forwards joins for a whole set, and what the local-listener guard asks
    about one forward at a time without sorting a set of one for each."""
    rules = []
    for proto in PROTOCOLS[fwd.protocol]:
        rules.append(_host_dnat_rules(fwd, proto, PREROUTING, fwd.allowed_sources, fwd.in_interface))
        rules.append(_accept_rule(fwd, proto, FORWARD, fwd.allowed_sources, fwd.in_interface))
        rules.append(_reply_rule(fwd, proto, FORWARD))
        if not fwd.hairpin:
            continue
        # Guests reach the forward through the bridge, not in_interface, and are not in
        # the allowlist: they get rules of their own, scoped to the hairpin sources.
        if fwd.in_interface or fwd.allowed_sources:
            rules.append(_host_dnat_rules(fwd, proto, HAIRPIN_PREROUTING, fwd.hairpin_sources, None))
            rules.append(_accept_rule(fwd, proto, HAIRPIN_FORWARD, fwd.hairpin_sources, None))
        rules.append(_host_dnat_rules(fwd, proto, OUTPUT, (), None))
        rules.append(Rule(
            chain=POSTROUTING, family=fwd.family, action=MASQUERADE, saddr=fwd.hairpin_sources,
            daddr=fwd.destination, proto=proto, dport=fwd.destination_port, ct_dnat=True,
            comment=fwd.comment,
        ))
    return rules


def compile_port_forwards(forwards):
    """Rules for the forwards, in a canonical order."""
    rules = []
    for fwd in sort_items(forwards):
        rules.extend(port_forward_rules(fwd))
    return _unique(rules)


def compile_masquerades(rules_in):
    rules = []
    for item in sort_items(rules_in):
        rules.append(Rule(
            chain=POSTROUTING, family=item.family, action=MASQUERADE, oif=item.out_interface,
            saddr=(item.source,), daddr=item.source if item.exclude_own_subnet else None,
            daddr_negated=item.exclude_own_subnet, comment=item.comment,
        ))
    return _unique(rules)


CHAIN_ORDER = (PREROUTING, HAIRPIN_PREROUTING, OUTPUT, FORWARD, HAIRPIN_FORWARD, POSTROUTING)


def canonical(rules):
    """Rules grouped by chain and IP family, keeping their order within a group: the form in
    which rules compiled from the model and rules read back from the host are compared (the
    iptables backend reads one family after the other)."""
    def group(rule):
        return (CHAIN_ORDER.index(rule.chain) if rule.chain in CHAIN_ORDER else len(CHAIN_ORDER), rule.family)

    return sorted(rules, key=group)


def _unique(rules):
    return canonical(dedupe(rules))


def _ports(rule_ports, fallback):
    return rule_ports if rule_ports is not None else fallback


def decompile_port_forwards(rules):
    """Model items from rules, and apart from them the rules that no forward explains (a rule
    edited or added by hand in our table). A run needs only the items (port_forward_items) and
    compares whole rule lists to see drift; the round-trip and injection tests use this form to
    prove that what the kernel hands back is explained in full."""
    forwards = port_forward_items(rules)
    expected = set(compile_port_forwards(forwards))
    return forwards, [rule for rule in rules if rule not in expected]


def port_forward_items(rules):
    """The forwards that ``rules`` hold, without the rules they leave unexplained: what a run
    needs of the rules read back (``before``) and of the rules it planned (``after``). Finding
    the unexplained rules compiles every forward again, and a run that compares whole rule
    lists does not need them."""
    by_chain = {}
    for rule in rules:
        by_chain.setdefault(rule.chain, []).append(rule)
    outputs = {(r.family, r.proto, r.daddr, r.dport, r.to_addr, r.to_port) for r in by_chain.get(OUTPUT, [])}
    hairpins = {}
    for rule in by_chain.get(POSTROUTING, []):
        hairpins[(rule.family, rule.proto, rule.daddr, rule.dport)] = rule.saddr
    per_proto = []
    for rule in by_chain.get(PREROUTING, []):
        if rule.action != DNAT or not rule.proto or not rule.dport or not rule.to_addr:
            continue
        to_port = _ports(rule.to_port, rule.dport)
        has_output = (rule.family, rule.proto, rule.daddr, rule.dport, rule.to_addr, rule.to_port) in outputs
        sources = hairpins.get((rule.family, rule.proto, rule.to_addr, to_port))
        per_proto.append((rule.proto, PortForward(
            protocol=rule.proto, host_port=rule.dport, destination=rule.to_addr,
            destination_port=to_port, in_interface=rule.iif, host_address=rule.daddr,
            allowed_sources=rule.saddr, hairpin=bool(has_output and sources is not None),
            hairpin_sources=tuple(sources or ()) if has_output else (), comment=rule.comment,
        )))
    return _join_protocols(per_proto)


def _join_protocols(per_proto):
    """A tcp and a udp forward that differ in nothing else are one forward of protocol both."""
    tcp = {}
    for proto, fwd in per_proto:
        if proto == "tcp":
            tcp[_without_protocol(fwd)] = fwd
    out = []
    joined = set()
    for proto, fwd in per_proto:
        twin = _without_protocol(fwd)
        if proto == "udp" and twin in tcp:
            out.append(PortForward(**dict(_fields(fwd), protocol="both")))
            joined.add(twin)
        elif proto == "udp":
            out.append(fwd)
    out.extend(fwd for key, fwd in tcp.items() if key not in joined)
    return sort_items(out)


def _fields(fwd):
    return {name: getattr(fwd, name) for name in PortForward.__dataclass_fields__}


def _without_protocol(fwd):
    fields = _fields(fwd)
    fields.pop("protocol")
    return tuple(sorted(fields.items()))


def masquerade_items(rules):
    """The masquerade items that ``rules`` hold (decompile_masquerades without the rest)."""
    return decompile_masquerades(rules)[0]


def decompile_masquerades(rules):
    items, unexplained = [], []
    for rule in rules:
        source = rule.saddr[0] if len(rule.saddr) == 1 else None
        plain = rule.chain == POSTROUTING and rule.action == MASQUERADE and source and not rule.proto
        own = rule.daddr_negated and rule.daddr == source
        if not plain or (rule.daddr and not own):
            unexplained.append(rule)
            continue
        items.append(Masquerade(source=source, out_interface=rule.oif, exclude_own_subnet=bool(own), comment=rule.comment))
    return sort_items(items), unexplained


def connected_subnets(routes):
    """Directly connected subnets from `ip -j route show` output (scope link, no gateway)."""
    nets = []
    for route in routes or []:
        dst = route.get("dst")
        if not dst or dst == "default" or route.get("gateway") or route.get("scope") not in ("link", None):
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if net.prefixlen < net.max_prefixlen:
            nets.append(net)
    return nets


def route_device(routes, destination):
    """The interface of the longest-prefix route to ``destination`` in `ip -j route show`
    output (the main table; policy routing is not followed), or None. A default route counts
    for the family it was listed under (``family``, added by the reader) or of its gateway."""
    addr = ipaddress.ip_address(destination)
    best = None
    for route in routes or []:
        dst, dev = route.get("dst"), route.get("dev")
        if not dst or not dev:
            continue
        if dst == "default":
            family = route.get("family") or (6 if ":" in route.get("gateway", "") else 4)
            dst = "0.0.0.0/0" if family == 4 else "::/0"
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if net.version == addr.version and addr in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, dev)
    return best[1] if best else None
