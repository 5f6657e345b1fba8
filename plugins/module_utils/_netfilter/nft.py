# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nftables backend: render our own table as one `nft -f` script, parse `nft -j` back to rules.

The collection owns whole tables (one per module) and replaces a table in one transaction:
`table` (so that `delete` cannot fail), `delete table`, then the full definition. Nothing of
anybody else's is flushed or rewritten.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.model import rule_text
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as ir

FAMILY = "inet"
TABLE_PREFIX = "hypervisor_network_"


def table_name(rule_set):
    """Our table of a rule set: the one place its name is built."""
    return TABLE_PREFIX + rule_set


# (family, table) of every table of ours, as the coexistence walk leaves them out
OWN_TABLES = frozenset((FAMILY, table_name(rule_set)) for rule_set in ("masquerade", "port_forward"))
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
    if prefix == "32" and ir.plain_ipv4(address):
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
# Read-back: nf.nft_rule parses every rule of nft's JSON; rules.rule_of makes a Rule of its small form.


def rule_of(chain, item):
    """A rule of our table (nf.nft_rule's small form) as a Rule (ir.rule_of, which gives action
    'unknown' to a shape we never write); None for our own jump rules."""
    if item["verdict"] == "jump" and item["target"] in JUMPS and not item["matches"]:
        return None
    return ir.rule_of(chain, 4, item, item["text"].partition(" (")[0])


def table_document(document, table):
    """What `nft -j list table` prints of ``table``, taken from ``document`` (`nft -j list
    ruleset`, which lists every table the same way): its table, chains, rules, sets and other
    objects, in the listing's order; None where the table does not exist. A run that read the
    whole ruleset has its snapshot of our table without listing the table again."""
    objects, exists = [], False
    for entry in (document or {}).get("nftables", []):
        kind, body = next(iter(entry.items()))
        if kind == "table":
            if body["name"] != table or body["family"] != FAMILY:
                continue
            exists = True
        elif not (isinstance(body, dict) and body.get("table") == table and body.get("family") == FAMILY):
            continue
        objects.append(entry)
    return {"nftables": objects} if exists else None


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
