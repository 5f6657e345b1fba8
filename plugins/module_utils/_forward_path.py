# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Would a forwarded, DNATed packet get through the forward-hook base chains of others?

A packet must be accepted by every base chain of a hook: an accept in our table does not beat
a reject in libvirt's. This walks the other owners' chains from `nft -j list ruleset` (which
shows iptables-nft rules too) for one packet per forward and says which rule or policy would
drop it. Matches it cannot decide make the answer 'unknown', never a silent pass. Pure.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

PASS, BLOCKED, UNKNOWN = "pass", "blocked", "unknown"
# Our own iptables chains are skipped: the question is whether the path is open without us.
OWN_CHAIN_PREFIX = "HNET-"
_MAX_DEPTH = 16


@dataclass(frozen=True)
class Packet:
    family: int
    proto: str
    daddr: str
    dport: int
    iif: str | None = None
    oif: str | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: str
    family: str
    table: str
    chain: str
    evidence: str


def _owner_tables(ruleset, skip_tables):
    chains, rules = {}, {}
    for item in ruleset.get("nftables", []):
        if "chain" in item:
            chain = item["chain"]
            key = (chain["family"], chain["table"])
            if chain["table"] in skip_tables:
                continue
            chains[key + (chain["name"],)] = chain
        elif "rule" in item:
            rule = item["rule"]
            if rule["table"] in skip_tables:
                continue
            rules.setdefault((rule["family"], rule["table"], rule["chain"]), []).append(rule)
    return chains, rules


def _applies(table_family, packet):
    if table_family == "inet":
        return True
    return (table_family, packet.family) in (("ip", 4), ("ip6", 6))


def _in_right(value, right):
    """Does ``value`` (an address or port) match an nft JSON right-hand side?"""
    if isinstance(right, dict) and "set" in right:
        return any(_in_right(value, item) for item in right["set"])
    if isinstance(right, dict) and "prefix" in right:
        net = ipaddress.ip_network("%s/%s" % (right["prefix"]["addr"], right["prefix"]["len"]), strict=False)
        return ipaddress.ip_address(value) in net
    if isinstance(right, dict) and "range" in right:
        low, high = right["range"]
        if isinstance(value, int):
            return low <= value <= high
        return ipaddress.ip_address(low) <= ipaddress.ip_address(value) <= ipaddress.ip_address(high)
    if isinstance(value, int):
        return right == value
    if isinstance(right, str):
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(right, strict=False)
        except ValueError:
            return value == right
    return None


def _match(match, packet):
    """True, False, or None when the match depends on what we cannot know."""
    left, right, op = match["left"], match["right"], match["op"]
    result = None
    if "meta" in left:
        key = left["meta"]["key"]
        known = {"iifname": packet.iif, "oifname": packet.oif, "l4proto": packet.proto,
                 "nfproto": "ipv4" if packet.family == 4 else "ipv6"}
        value = known.get(key)
        if value is None:
            return None
        result = _in_right(value, right) if isinstance(right, dict) else value == right
    elif "payload" in left:
        proto, name = left["payload"]["protocol"], left["payload"]["field"]
        if proto in ("ip", "ip6"):
            if (proto == "ip") != (packet.family == 4):
                return False
            if name != "daddr":
                return None
            result = _in_right(packet.daddr, right)
        elif proto in ("tcp", "udp", "th"):
            if proto != "th" and proto != packet.proto:
                return False
            if name != "dport":
                return None
            result = _in_right(packet.dport, right)
        else:
            return None
    elif "ct" in left and left["ct"]["key"] == "state":
        states = right if isinstance(right, list) else right.get("set", [right]) if isinstance(right, dict) else [right]
        result = "new" in states
    elif "ct" in left and left["ct"]["key"] == "status":
        states = right if isinstance(right, list) else [right]
        result = "dnat" in states
    else:
        return None
    if result is None:
        return None
    return (not result) if op in ("!=",) else bool(result)


def _walk(chain_key, chains, rules, packet, depth=0):
    """('accept' | 'drop' | 'return' | 'unknown', evidence) for one chain."""
    if depth > _MAX_DEPTH:
        return "unknown", "jumps nested too deep"
    undecided = None
    for rule in rules.get(chain_key, []):
        outcome = True
        verdict = None
        for expr in rule["expr"]:
            if "match" in expr:
                matched = _match(expr["match"], packet)
                if matched is False:
                    outcome = False
                    break
                if matched is None:
                    outcome = None
            elif "xt" in expr:
                kind, name = expr["xt"].get("type"), expr["xt"].get("name")
                if kind == "target" and name in ("REJECT", "DROP"):
                    verdict = ("drop", None)
                elif kind == "match" and name in ("conntrack", "state"):
                    # iptables-nft hides xt options from JSON; in a FORWARD chain these are the
                    # RELATED,ESTABLISHED accepts (libvirt, Docker, ufw), which a new
                    # forwarded connection does not match.
                    outcome = False
                    break
                elif kind == "match":
                    outcome = None
            elif "accept" in expr:
                verdict = ("accept", None)
            elif "drop" in expr or "reject" in expr:
                verdict = ("drop", None)
            elif "return" in expr:
                verdict = ("return", None)
            elif "jump" in expr or "goto" in expr:
                target = (expr.get("jump") or expr.get("goto"))["target"]
                verdict = ("jump", target)
            elif any(k in expr for k in ("counter", "log", "limit", "comment", "mangle", "meta")):
                continue
            else:
                outcome = None
        if outcome is False or verdict is None:
            continue
        text = _rule_text(chain_key, rule)
        if verdict[0] == "jump":
            if outcome is None:
                undecided = undecided or text
                continue
            if verdict[1].startswith(OWN_CHAIN_PREFIX):
                continue
            sub, evidence = _walk(chain_key[:2] + (verdict[1],), chains, rules, packet, depth + 1)
            if sub == "return":
                continue
            return sub, evidence
        if outcome is None:
            if verdict[0] == "drop":
                undecided = undecided or text
            continue
        if verdict[0] == "drop" and undecided:
            return "unknown", undecided
        return verdict[0], text
    if undecided:
        return "unknown", undecided
    return "return", None


def _rule_text(chain_key, rule):
    return "%s %s chain %s, rule handle %s%s" % (
        chain_key[0], chain_key[1], chain_key[2], rule.get("handle"),
        " (%s)" % rule["comment"] if rule.get("comment") else "",
    )


class ForwardHook:
    """The others' forward-hook base chains, indexed once, asked about many packets."""

    def __init__(self, ruleset, skip_tables=()):
        self.chains, self.rules = _owner_tables(ruleset or {}, set(skip_tables))
        self.base = [(key, chain) for key, chain in self.chains.items() if chain.get("hook") == "forward"]

    def check(self, packet):
        """One Verdict per base chain that does not plainly accept ``packet``."""
        verdicts = []
        for key, chain in self.base:
            if not _applies(key[0], packet):
                continue
            outcome, evidence = _walk(key, self.chains, self.rules, packet)
            if outcome == "return":
                outcome = "accept" if chain.get("policy", "accept") == "accept" else "drop"
                evidence = "%s %s chain %s, policy %s" % (key[0], key[1], key[2], chain.get("policy"))
            if outcome == "accept":
                continue
            verdicts.append(Verdict(BLOCKED if outcome == "drop" else UNKNOWN, key[0], key[1], key[2], evidence))
        return verdicts


def check_packet(ruleset, packet, skip_tables=()):
    """One Verdict per foreign forward-hook base chain that does not plainly accept ``packet``."""
    return ForwardHook(ruleset, skip_tables).check(packet)
