# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iptables backend (iptables-nft and iptables-legacy): dedicated chains, one
`iptables-restore --noflush` per family, read back from `iptables-save`.

iptables-save is the format iptables-restore reads, so it is split into argv tokens the way
iptables-restore splits it and read option by option, not scraped with patterns: by foreign.py's
one reader of that format (nf.read_save, nf.save_rule), with the strict check of our own rules
(rules.rule_of) on top.
"""

from __future__ import annotations

import re

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
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
    rule_of,
)

# Our chain per rule chain, keyed by rule set (the name of a set of our rules: its nft table,
# iptables chains, boot files and rollback state): (table, chain name, chain that jumps to it).
CHAINS = {
    "port_forward": {
        PREROUTING: ("nat", "HNET-PF-PREROUTING", "PREROUTING"),
        HAIRPIN_PREROUTING: ("nat", "HNET-PF-HAIRPIN", "HNET-PF-PREROUTING"),
        OUTPUT: ("nat", "HNET-PF-OUTPUT", "OUTPUT"),
        POSTROUTING: ("nat", "HNET-PF-POSTROUTING", "POSTROUTING"),
        FORWARD: ("filter", "HNET-PF-FORWARD", "FORWARD"),
        HAIRPIN_FORWARD: ("filter", "HNET-PF-HAIRPIN-FWD", "HNET-PF-FORWARD"),
    },
    "masquerade": {
        POSTROUTING: ("nat", "HNET-MASQ-POSTROUTING", "POSTROUTING"),
    },
    # With the nftables backend: the accept rules again, in the iptables FORWARD chain, where
    # libvirt's rejects and Docker's DROP policy stand (see _netfilter/coexist.py).
    "port_forward_accept": {
        FORWARD: ("filter", "HNET-PFA-FORWARD", "FORWARD"),
        HAIRPIN_FORWARD: ("filter", "HNET-PFA-HAIRPIN", "HNET-PFA-FORWARD"),
    },
}
# Every chain of ours, as the coexistence walk leaves out the jumps to them.
OWN_CHAINS = frozenset(chain for roles in CHAINS.values() for (_table, chain, _parent) in roles.values())
TABLES = ("nat", "filter")
MULTI_SOURCE_RULE_SETS = {"port_forward", "port_forward_accept"}
BUILTIN = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
ACTIONS = {ACCEPT: "ACCEPT", MASQUERADE: "MASQUERADE", DNAT: "DNAT"}


def _ports(ports, sep="-"):
    low, high = ports
    return str(low) if low == high else "%d%s%d" % (low, sep, high)


def _rule_args(rule, saddr):
    args = []
    if rule.iif:
        args += ["-i", rule_text("in_interface", rule.iif, interface=True)]
    if rule.oif:
        args += ["-o", rule_text("out_interface", rule.oif, interface=True)]
    if saddr:
        args += ["-s", saddr]
    if rule.daddr:
        args += (["!"] if rule.daddr_negated else []) + ["-d", rule.daddr]
    if rule.proto:
        args += ["-p", rule.proto]
        if rule.dport or rule.sport:
            args += ["-m", rule.proto]
        if rule.sport:
            args += ["--sport", _ports(rule.sport, ":")]
        if rule.dport:
            args += ["--dport", _ports(rule.dport, ":")]
    if rule.daddr_local:
        args += ["-m", "addrtype", "--dst-type", "LOCAL"]
    if rule.ct_dnat:
        args += ["-m", "conntrack", "--ctstate", "DNAT"]
    if rule.comment:
        args += ["-m", "comment", "--comment", rule_text("comment", rule.comment)]
    args += ["-j", ACTIONS[rule.action]]
    if rule.action == DNAT:
        target = rule.to_addr
        if rule.to_port:
            target = "%s:%s" % ("[%s]" % target if rule.family == 6 else target, _ports(rule.to_port))
        args += ["--to-destination", target]
    return args


_PLAIN = re.compile(r"[A-Za-z0-9_.,:/=!+-]+\Z")


def quote(arg):
    """The one way an argument enters an iptables-restore line. iptables-restore splits a line
    on blanks and reads a double-quoted argument with backslash escapes (nf.split_line);
    anything but a plain word is written that way."""
    if _PLAIN.match(arg):
        return arg
    return '"%s"' % arg.replace("\\", "\\\\").replace('"', '\\"')


def _quote(args):
    return " ".join(quote(a) for a in args)


def render_lines(rule_set, family, rules):
    """`-A CHAIN ...` lines per (table, chain) for ``rules`` of one family; one line per source,
    since iptables matches one source network per rule."""
    lines = {}
    for rule in rules:
        if rule.family != family:
            continue
        table, chain, _parent = CHAINS[rule_set][rule.chain]
        if rule.action == "unknown":
            lines.setdefault((table, chain), []).append(not_understood(rule))
            continue
        for saddr in rule.saddr or (None,):
            lines.setdefault((table, chain), []).append("-A %s %s" % (chain, _quote(_rule_args(rule, saddr))))
    return lines


def render_restore(rule_set, family, rules, have_jumps):
    """The iptables-restore --noflush script that makes our chains hold exactly ``rules``.

    ``have_jumps`` is the set of (table, parent, chain) jumps already present, so that the
    jumps are inserted once. With no rules at all, our chains and jumps are removed.
    """
    lines = render_lines(rule_set, family, rules)
    wanted = set(lines)
    for table, chain, parent in CHAINS[rule_set].values():
        if (table, chain) in wanted and parent not in BUILTIN:
            wanted.add((table, parent))
    out = []
    for table in TABLES:
        chains = [(c, p) for (t, c, p) in CHAINS[rule_set].values() if t == table]
        if not chains:
            continue
        body = []
        keep = [(c, p) for c, p in chains if (table, c) in wanted]
        drop = [(c, p) for c, p in chains if (table, c) not in wanted]
        for chain, parent in drop:
            if (table, parent, chain) in have_jumps:
                body.append("-D %s -j %s" % (parent, chain))
        for chain, _parent in chains:
            body.append(":%s - [0:0]" % chain)
        for chain, parent in keep:
            body.extend(lines.get((table, chain), []))
        for chain, parent in keep:
            if parent in BUILTIN:
                if (table, parent, chain) not in have_jumps:
                    body.append("-I %s 1 -j %s" % (parent, chain))
            else:
                body.append("-A %s -j %s" % (parent, chain))
        for chain, _parent in drop:
            body.append("-X %s" % chain)
        out.append("*%s" % table)
        out.extend(body)
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def jumps_of(rule_set, family, rules):
    """The (table, parent, chain) jumps from built-in chains that render_restore leaves for ``rules``."""
    lines = render_lines(rule_set, family, rules)
    return {(table, parent, chain) for table, chain, parent in CHAINS[rule_set].values()
            if parent in BUILTIN and (table, chain) in lines}


def boot_script(rule_set, family, rules):
    """What a boot loads: our chains and rules and the jumps, onto empty built-in chains."""
    if not any(rule.family == family for rule in rules):
        return None
    return render_restore(rule_set, family, rules, have_jumps=set())


# ---------------------------------------------------------------------------------------------
# Read-back


def _chain_roles(rule_set):
    return {chain: (table, role) for role, (table, chain, _p) in CHAINS[rule_set].items()}


def parse_rule(role, family, tokens):
    """Tokens after `-A CHAIN` of one of our chains as a Rule: the tolerant reading every tool's
    rules get (nf.save_rule), then the strict check of ours (rules.rule_of). A shape we never
    write comes back with action 'unknown', so that the planner sees the drift."""
    text = " ".join(tokens)[:100]
    try:
        item = nf.save_rule(tokens)
    except (ValueError, IndexError):  # an address or port of a form we never write
        return Rule(chain=role, family=family, action="unknown", comment=text)
    return rule_of(role, family, item, text)


def parse_save(rule_set, family, text):
    """(rules, jumps) from `iptables-save` output: our chains' rules, with lines that differ
    only in their source regrouped into one rule again (port forwards only: their key makes such
    lines one forward; masquerade rules are one source each); jumps as (table, parent, chain)."""
    roles = _chain_roles(rule_set)
    ours = set(roles)
    rules, jumps = [], set()
    for table, entry, value in nf.read_save(text):
        if entry != "rule":
            continue
        tokens, complete, _line = value
        chain = tokens[1]
        if tokens[2:] and tokens[2] == "-j" and len(tokens) == 4 and tokens[3] in ours:
            jumps.add((table, chain, tokens[3]))
            continue
        if chain not in ours or roles[chain][0] != table:
            continue
        rule = parse_rule(roles[chain][1], family, tokens[2:] if complete else tokens[2:] + ["(unterminated quote)"])
        if rule_set in MULTI_SOURCE_RULE_SETS and rules and rule.saddr and rules[-1].saddr and _same_but_source(rules[-1], rule):
            merged = tuple(sorted(set(rules[-1].saddr) | set(rule.saddr), key=network_sort_key))
            rules[-1] = Rule(**dict(_as_dict(rule), saddr=merged))
        else:
            rules.append(rule)
    return rules, jumps


def _as_dict(rule):
    return {name: getattr(rule, name) for name in Rule.__dataclass_fields__}


def _same_but_source(a, b):
    da, db = _as_dict(a), _as_dict(b)
    da.pop("saddr")
    db.pop("saddr")
    return da == db and a.action != "unknown"
