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

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.model import network_sort_key, rule_text
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.rules import (
    ACCEPT,
    DNAT,
    FORWARD,
    HAIRPIN_FORWARD,
    HAIRPIN_PREROUTING,
    MASQUERADE,
    OUTPUT,
    POSTROUTING,
    PREROUTING,
    Rule,
    not_understood,
    writable,
)

FAMILY = "inet"
BASE_CHAINS = {
    PREROUTING: "type nat hook prerouting priority dstnat; policy accept;",
    OUTPUT: "type nat hook output priority -100; policy accept;",
    FORWARD: "type filter hook forward priority filter; policy accept;",
    POSTROUTING: "type nat hook postrouting priority srcnat; policy accept;",
}
# Regular chains and the base chain that jumps to each.
JUMPS = {HAIRPIN_PREROUTING: PREROUTING, HAIRPIN_FORWARD: FORWARD}


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
        return not_understood(rule)
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
    if rule.action == DNAT:
        target = _host(rule.to_addr, rule.family) if rule.to_port else rule.to_addr
        parts.append("dnat %s to %s%s" % (kw, target, ":%s" % _ports(rule.to_port) if rule.to_port else ""))
    else:
        parts.append(rule.action)
    if rule.comment:
        parts.append("comment %s" % _quoted("comment", rule.comment))
    return " ".join(parts)


def _compact(text):
    """nft prints a host route as a plain address; write it the same way."""
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
# Read-back


class _Unknown(Exception):
    pass


@functools.lru_cache(maxsize=4096)
def _net_text(text):
    return str(ipaddress.ip_network(text, strict=False))


@functools.lru_cache(maxsize=4096)
def _address_text(text):
    return str(ipaddress.ip_address(text))


def _net(value):
    if isinstance(value, dict) and "prefix" in value:
        return str(ipaddress.ip_network("%s/%s" % (value["prefix"]["addr"], value["prefix"]["len"]), strict=False))
    if isinstance(value, str):
        return _net_text(value)
    raise _Unknown(value)


def _port_range(value):
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, dict) and "range" in value:
        return tuple(value["range"])
    raise _Unknown(value)


def _parse_match(match, fields):
    left, right, op = match["left"], match["right"], match["op"]
    if "meta" in left:
        key = left["meta"]["key"]
        if key in ("iifname", "oifname") and op == "==":
            fields["iif" if key == "iifname" else "oif"] = right
        elif key == "nfproto":
            fields["family"] = 4 if right == "ipv4" else 6
        elif key == "l4proto":
            fields["proto"] = right
        else:
            raise _Unknown(match)
    elif "payload" in left:
        proto, name = left["payload"]["protocol"], left["payload"]["field"]
        if proto in ("ip", "ip6") and name in ("saddr", "daddr"):
            fields["family"] = 4 if proto == "ip" else 6
            if name == "saddr" and op == "==":
                items = right["set"] if isinstance(right, dict) and "set" in right else [right]
                fields["saddr"] = tuple(sorted((_net(i) for i in items), key=network_sort_key))
            elif name == "daddr" and op in ("==", "!="):
                negated = op == "!="
                fields["daddr"] = _net(right) if negated or isinstance(right, dict) else _address_text(right)
                fields["daddr_negated"] = negated
            else:
                raise _Unknown(match)
        elif proto in ("tcp", "udp", "th") and name in ("dport", "sport") and op == "==":
            if proto != "th":
                fields["proto"] = proto
            fields[name] = _port_range(right)
        else:
            raise _Unknown(match)
    elif "fib" in left and left["fib"].get("flags") == ["daddr"] and right == "local":
        fields["daddr_local"] = True
    elif "ct" in left and left["ct"]["key"] == "status" and right in ("dnat", ["dnat"]):
        fields["ct_dnat"] = True
    else:
        raise _Unknown(match)


def parse_rule(chain, obj):
    """One rule object of `nft -j` output as a Rule; None for our own jump rules.

    A rule of a shape we never write comes back as a Rule with action 'unknown' so that the
    planner sees the drift and rewrites the table.
    """
    fields = {"chain": chain, "family": 4, "comment": obj.get("comment")}
    try:
        for expr in obj["expr"]:
            if "match" in expr:
                _parse_match(expr["match"], fields)
            elif "counter" in expr:
                continue
            elif "jump" in expr and expr["jump"]["target"] in JUMPS:
                return None
            elif "dnat" in expr:
                dnat = expr["dnat"]
                fields["action"] = DNAT
                fields["family"] = 4 if dnat.get("family", "ip") == "ip" else 6
                fields["to_addr"] = _address_text(dnat["addr"])
                if "port" in dnat:
                    fields["to_port"] = _port_range(dnat["port"])
            elif "masquerade" in expr:
                fields["action"] = MASQUERADE
            elif "accept" in expr:
                fields["action"] = ACCEPT
            else:
                raise _Unknown(expr)
    except (_Unknown, KeyError, TypeError, ValueError):
        return Rule(chain=chain, family=fields["family"], action="unknown", comment="handle %s" % obj.get("handle"))
    if "action" not in fields or not writable(Rule(**fields)):
        return Rule(chain=chain, family=fields["family"], action="unknown", comment="handle %s" % obj.get("handle"))
    return Rule(**fields)


def parse_table(document, table):
    """Rules of ``table`` from `nft -j list table` output; (exists, rules)."""
    exists = False
    rules = []
    for item in (document or {}).get("nftables", []):
        if "table" in item and item["table"]["name"] == table and item["table"]["family"] == FAMILY:
            exists = True
        rule = item.get("rule")
        if rule and rule["table"] == table and rule["family"] == FAMILY:
            parsed = parse_rule(rule["chain"], rule)
            if parsed is not None:
                rules.append(parsed)
    return exists, rules
