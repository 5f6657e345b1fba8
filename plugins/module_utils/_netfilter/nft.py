# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nftables backend: render our own table as one `nft -f` script, parse `nft -j` back to rules.

The collection owns whole tables (one per module) and replaces a table in one transaction:
`table` (so that `delete` cannot fail), `delete table`, then the full definition. Nothing of
anybody else's is flushed or rewritten.
"""

from __future__ import annotations

import functools
import ipaddress

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.model import network_sort_key, rule_text
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as ir

FAMILY = "inet"
TABLE_PREFIX = "hypervisor_network_"


def table_name(kind):
    """Our table of a module: the one place its name is built."""
    return TABLE_PREFIX + kind


# (family, table) of every table of ours, as the coexistence walk leaves them out
OWN_TABLES = frozenset((FAMILY, table_name(kind)) for kind in ("masquerade", "port_forward"))
BASE_CHAINS = {
    ir.PREROUTING: "type nat hook prerouting priority dstnat; policy accept;",
    ir.OUTPUT: "type nat hook output priority -100; policy accept;",
    ir.FORWARD: "type filter hook forward priority filter; policy accept;",
    ir.POSTROUTING: "type nat hook postrouting priority srcnat; policy accept;",
}
# Regular chains and the base chain that jumps to each.
JUMPS = {ir.HAIRPIN_PREROUTING: ir.PREROUTING, ir.HAIRPIN_FORWARD: ir.FORWARD}


def _ports(ports):
    low, high = ports
    return str(low) if low == high else "%d-%d" % (low, high)


def _quoted(field, value, interface=False):
    """The one way a string enters an nft script: in double quotes, after the model's check
    (nft strings have no escapes, so what could break out is refused, never mangled)."""
    return '"%s"' % rule_text(field, value, interface=interface)


def _addr_kw(family):
    return "ip" if family == 4 else "ip6"


def _host(addr, family):
    return "[%s]" % addr if family == 6 else addr


def render_rule(rule):
    if rule.action == "unknown":
        return ir.not_understood(rule)
    kw = _addr_kw(rule.family)
    parts = []
    if not (rule.saddr or rule.daddr):
        parts.append("meta nfproto %s" % ("ipv4" if rule.family == 4 else "ipv6"))
    if rule.iif:
        parts.append("iifname %s" % _quoted("in_interface", rule.iif, interface=True))
    if rule.oif:
        parts.append("oifname %s" % _quoted("out_interface", rule.oif, interface=True))
    if rule.saddr:
        nets = [_compact(n) for n in rule.saddr]
        parts.append("%s saddr %s" % (kw, nets[0] if len(nets) == 1 else "{ %s }" % ", ".join(nets)))
    if rule.daddr:
        parts.append("%s daddr %s%s" % (kw, "!= " if rule.daddr_negated else "", _compact(rule.daddr)))
    if rule.daddr_local:
        parts.append("fib daddr type local")
    if rule.ct_dnat:
        parts.append("ct status dnat")
    if rule.proto and rule.dport:
        parts.append("%s dport %s" % (rule.proto, _ports(rule.dport)))
    if rule.proto and rule.sport:
        parts.append("%s sport %s" % (rule.proto, _ports(rule.sport)))
    if rule.proto and not (rule.dport or rule.sport):
        parts.append("meta l4proto %s" % rule.proto)
    if rule.action == ir.DNAT:
        target = _host(rule.to_addr, rule.family) if rule.to_port else rule.to_addr
        parts.append("dnat %s to %s%s" % (kw, target, ":%s" % _ports(rule.to_port) if rule.to_port else ""))
    else:
        parts.append(rule.action)
    if rule.comment:
        parts.append("comment %s" % _quoted("comment", rule.comment))
    return " ".join(parts)


def _compact(text):
    """nft prints a host route as a plain address; write it the same way."""
    address, _sep, prefix = text.partition("/")
    if prefix == "32" and plain_ipv4(address):
        return address
    if "/" in text:
        net = ipaddress.ip_network(text)
        if net.prefixlen == net.max_prefixlen:
            return str(net.network_address)
    return text


def render_table(table, rules):
    """The whole `nft -f` script that makes ``table`` hold exactly ``rules``: `table` (so that
    `delete` cannot fail), `delete table`, then the definition."""
    return render_delete(table) + render_definition(table, rules)


def render_definition(table, rules):
    """``table`` holding ``rules`` in nft's syntax; empty without rules."""
    if not rules:
        return ""
    used = {rule.chain for rule in rules}
    lines = ["table %s %s {" % (FAMILY, table)]
    for chain, spec in BASE_CHAINS.items():
        if chain not in used and not any(JUMPS[c] == chain for c in used if c in JUMPS):
            continue
        lines.append("  chain %s {" % chain)
        lines.append("    " + spec)
        lines.extend("    " + render_rule(rule) for rule in rules if rule.chain == chain)
        lines.extend("    jump %s" % sub for sub, base in JUMPS.items() if base == chain and sub in used)
        lines.append("  }")
    for chain in JUMPS:
        if chain in used:
            lines.append("  chain %s {" % chain)
            lines.extend("    " + render_rule(rule) for rule in rules if rule.chain == chain)
            lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_delete(table):
    return "table %s %s\ndelete table %s %s\n" % (FAMILY, table, FAMILY, table)


# ---------------------------------------------------------------------------------------------
# Read-back: nf.nft_rule parses every rule of nft's JSON; here its small form becomes a Rule.


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
        fields["daddr"] = _net_text(value) if negated or "/" in value else _address_text(value)
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


def rule_of(chain, item):
    """A rule of our table (nf.nft_rule's small form) as a Rule; None for our own jump
    rules. A rule of a shape we never write comes back as a Rule with action 'unknown' so that
    the planner sees the drift and rewrites the table."""
    if item["verdict"] == "jump" and item["target"] in JUMPS and not item["matches"]:
        return None
    fields = {"chain": chain, "family": 4, "comment": item["comment"]}
    try:
        for key, negated, values in item["matches"]:
            _apply_match(key, negated, values, fields)
        nat = item["nat"] or {}
        if item["statements"]:
            raise _Unknown(item["statements"])
        if item["verdict"] == "accept":
            fields["action"] = ir.ACCEPT
        elif item["verdict"] == "nat" and nat["kind"] == "masquerade":
            fields["action"] = ir.MASQUERADE
        elif item["verdict"] == "nat" and nat["kind"] == "dnat" and nat.get("addr"):
            fields["action"] = ir.DNAT
            fields["family"] = 4 if nat["family"] == "ip" else 6
            fields["to_addr"] = _address_text(nat["addr"])
            if nat["ports"]:
                fields["to_port"] = nat["ports"]
        else:
            raise _Unknown(item["verdict"])
        parsed = ir.Rule(**fields)
    except (_Unknown, KeyError, TypeError, ValueError):
        parsed = None
    if parsed is None or not ir.writable(parsed):
        return ir.Rule(chain=chain, family=fields["family"], action="unknown", comment=item["text"].partition(" (")[0])
    return parsed


def parse_table(document, table):
    """Rules of ``table`` from `nft -j list table` (or `list ruleset`) output; (exists, rules)."""
    exists = False
    rules = []
    for entry in (document or {}).get("nftables", []):
        if "table" in entry and entry["table"]["name"] == table and entry["table"]["family"] == FAMILY:
            exists = True
        obj = entry.get("rule")
        if obj and obj["table"] == table and obj["family"] == FAMILY:
            parsed = rule_of(obj["chain"], nf.nft_rule(obj))
            if parsed is not None:
                rules.append(parsed)
    return exists, rules
