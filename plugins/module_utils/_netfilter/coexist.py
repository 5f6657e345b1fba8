# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coexistence with the other rule owners of a host: libvirt, Docker, ufw, firewalld.

For each forward, the forwarded packet is walked through every forward-hook base chain of the
others, with the reader and walker that diagnose uses too (_netfilter/foreign): every nftables
table (iptables-nft's included) and the iptables-legacy tables, which nft cannot see but the
kernel runs all the same. A drop in an iptables FORWARD chain (libvirt's reject rules, Docker's
DROP policy, ufw's chains, plain iptables), nft or legacy, is opened by our own chain jumped to
from the top of that FORWARD, which libvirt, Docker and ufw leave in place when they rebuild
their own chains. A drop anywhere else (firewalld's table, another nftables table) is not ours
to edit: the task fails before changing anything and says what to run.
"""

from __future__ import annotations

import json

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.model import PROTOCOLS
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.rules import route_device

PASS, BLOCKED, UNKNOWN = "pass", "blocked", "unknown"
OPENABLE_CHAIN = "FORWARD"
OWN_TABLES = ("hypervisor_network_port_forward", "hypervisor_network_masquerade")
# Our own iptables chains are left out: the question is whether the path is open without us.
OWN_CHAIN_PREFIX = "HNET-"
TOOLS = {("nft", "ip"): "iptables", ("nft", "ip6"): "ip6tables",
         ("legacy", "ip"): "iptables-legacy", ("legacy", "ip6"): "ip6tables-legacy"}


def read_ruleset(runner):
    """Everything nftables holds (iptables-nft rules included), or None without nft."""
    if not runner.has("nft"):
        return None
    rc, out, _err = runner.read(["nft", "-j", "list", "ruleset"], check_rc=False)
    return json.loads(out) if rc == 0 and out.strip() else None


def read_chains(runner, ruleset):
    """(chains, legacy saves): the others' chains from ``ruleset`` (already read, iptables-nft's
    tables included, so they are not read a second time from iptables-nft-save) and from the
    legacy tables, with one iptables-legacy-save per family whose legacy tables are loaded."""
    saves = nf.read_legacy(runner)
    chains = nf.chains_from_nft(ruleset) if ruleset else {}
    chains.update(nf.legacy_chains(saves))
    return without_own(chains), saves


def without_own(chains):
    """The chain map without our tables and without the jumps to our iptables chains."""
    out = {}
    for key, body in chains.items():
        if key[1] in OWN_TABLES:
            continue
        rules = [r for r in body["rules"] if not (r["target"] or "").startswith(OWN_CHAIN_PREFIX)]
        out[key] = dict(body, rules=rules)
    return out


def detect_managers(chains):
    """Names of the rule owners present, from table and chain names (legacy tables included)."""
    found = set()
    for _family, table, name in chains:
        if table == "firewalld":
            found.add("firewalld")
        if table.startswith("libvirt") or name.startswith("LIBVIRT_"):
            found.add("libvirt")
        elif name.startswith("DOCKER"):
            found.add("docker")
        elif name.startswith("ufw-") or name.startswith("ufw6-"):
            found.add("ufw")
    return sorted(found)


def openable_variant(key):
    """'nft' or 'legacy' when the chain ``key`` is an iptables filter FORWARD (the one place our
    chain can stand first), else None."""
    family, table, name = key
    if family not in ("ip", "ip6") or name != OPENABLE_CHAIN:
        return None
    variant = nf.variant_of(table)
    base = table[len(nf.LEGACY_PREFIX):] if variant == "legacy" else table
    return variant if variant and base == "filter" else None


def _label(key):
    family, table, name = key
    variant = nf.variant_of(table)
    if variant == "legacy":
        return "%s table %s chain %s" % (TOOLS[(variant, family)], table[len(nf.LEGACY_PREFIX):], name)
    return "%s %s chain %s" % (family, table, name)


def _where(result):
    key = result["key"]
    if result["by_policy"]:
        text = "%s, policy %s" % (_label(key), result["verdict"])
    else:
        text = "%s, rule %s" % (_label(key), result["by"])
    if result["doubts"]:
        text += " (after rules not understood: %s)" % "; ".join(result["doubts"][:3])
    return text


def outcome(result):
    """pass, blocked or unknown for one base chain's walk. A drop behind a rule that was not
    understood, or a policy reached past one, is unknown, never a silent pass or a sure drop."""
    verdict = result["verdict"]
    if verdict == "accept":
        return UNKNOWN if result["by_policy"] and result["doubts"] else PASS
    if verdict in ("drop", "reject"):
        return UNKNOWN if result["doubts"] else BLOCKED
    return UNKNOWN


def _firewalld_commands(fwd, proto):
    family = "ipv4" if fwd.family == 4 else "ipv6"
    port = fwd.destination_port[0] if fwd.destination_port[0] == fwd.destination_port[1] else "%d-%d" % fwd.destination_port
    return (
        "firewall-cmd --permanent --new-policy hnet-forward; "
        "firewall-cmd --permanent --policy hnet-forward --add-ingress-zone ANY --add-egress-zone ANY; "
        "firewall-cmd --permanent --policy hnet-forward --add-rich-rule "
        "'rule family=\"%s\" destination address=\"%s\" port port=\"%s\" protocol=\"%s\" accept'; "
        "firewall-cmd --reload" % (family, fwd.destination, port, proto)
    )


def _instructions(key, fwd, proto, backend_variant):
    family, table, _name = key
    variant = openable_variant(key)
    if table == "firewalld":
        return "open it through firewalld and run the task again: %s" % _firewalld_commands(fwd, proto)
    if variant:
        ports = "%d" % fwd.destination_port[0] if fwd.destination_port[0] == fwd.destination_port[1] else "%d:%d" % fwd.destination_port
        command = "%s -I FORWARD 1 -d %s -p %s --dport %s -m conntrack --ctstate DNAT -j ACCEPT" % (
            TOOLS[(variant, family)], fwd.destination, proto, ports)
        if backend_variant and backend_variant != variant:
            how = ("this task writes iptables-%s rules, which do not open a drop in iptables-%s: use "
                   "backend=nftables (which opens it) or iptables_variant=%s" % (backend_variant, variant, variant))
        else:
            how = "run the task with coexistence=open, which opens it with a chain of ours at the top of FORWARD"
        return "%s, or run: %s" % (how, command)
    return (
        "add an accept for forwarded traffic to %s %s/%s (ct status dnat) to the configuration that owns "
        "table %s %s, or remove that drop, and run the task again"
        % (fwd.destination, proto, fwd.destination_port[0], family, table)
    )


def _packet(fwd, proto, oif):
    packet = {
        "nfproto": "ipv4" if fwd.family == 4 else "ipv6", "iif": fwd.in_interface, "oif": oif,
        "saddr": None, "daddr": fwd.destination, "proto": proto, "sport": None,  # any outside client
        "dport": fwd.destination_port[0], "ct": ["new", "dnat"],
    }
    # An interface we do not know (any input interface, no route to the destination) decides
    # nothing either way: a rule that names one is not understood rather than not matching.
    packet["unknown_fields"] = tuple(name for name in ("iif", "oif") if packet[name] is None)
    return packet


def assess(chains, forwards, policy, routes, companions=(), ours=None):
    """Walk every forward through the others' chains.

    Returns (report, needs): one report entry per finding, and the set of (variant, family)
    whose FORWARD chain needs our companion chain. Raises before anything is changed when a drop
    cannot be opened and ``policy`` is not 'ignore', or when any drop is found and ``policy`` is
    'fail'. ``companions`` are the iptables variants a companion chain can go into (nftables
    backend); ``ours`` is the variant of the iptables backend, whose chains always hang at the
    top of its FORWARD. ``routes`` (`ip -j route show` of both families) give each forward's
    output interface.
    """
    if not forwards or not chains:
        return [], set()
    managers = detect_managers(chains)
    bases = nf.forward_bases(chains)
    report = [{"managers": managers}] if managers else []
    needs = set()
    problems = []
    for fwd in forwards:
        oif = route_device(routes, fwd.destination)
        for proto in PROTOCOLS[fwd.protocol]:
            for result in nf.forward_verdicts(chains, _packet(fwd, proto, oif), bases):
                found = outcome(result)
                if found == PASS:
                    continue
                key = result["key"]
                entry = {
                    "destination": fwd.destination, "protocol": proto, "port": fwd.destination_port[0],
                    "outcome": found, "where": _where(result),
                }
                variant = openable_variant(key) if found == BLOCKED else None
                by_ours = variant is not None and variant == ours and policy != "fail"
                by_companion = variant is not None and variant in companions and policy == "open"
                if by_ours or by_companion:
                    if by_companion:
                        needs.add((variant, fwd.family))
                    entry["action"] = "opened by our chain jumped to from the top of %s FORWARD" % TOOLS[(variant, key[0])]
                elif found == BLOCKED and policy != "ignore":
                    problems.append("%s would drop %s %s port %s: %s" % (
                        entry["where"], proto, fwd.destination, fwd.destination_port[0],
                        _instructions(key, fwd, proto, ours)))
                    entry["action"] = "refused"
                else:
                    entry["action"] = "none (reported only)"
                report.append(entry)
    if problems:
        raise HypervisorNetworkError(
            "forwarded traffic would not get through: " + " | ".join(problems) + ". Nothing was changed.",
            coexistence=report,
        )
    return report, needs
