# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coexistence with the other rule owners of a host: libvirt, Docker, ufw, firewalld.

For each forward, the forwarded packet is walked through every forward-hook base chain of the
others (see _forward_path). A drop in an iptables FORWARD chain (libvirt's reject rules, Docker's
DROP policy, ufw's chains, plain iptables) is opened by our own chain jumped to from the top of
FORWARD, which libvirt, Docker and ufw leave in place when they rebuild their own chains. A drop
anywhere else (firewalld's table, another nftables table) is not ours to edit: the task fails
before changing anything and says what to run.
"""

from __future__ import annotations

import json

from ansible_collections.hypervisor.network.plugins.module_utils import _forward_path as path
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter_model import PROTOCOLS
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter_rules import route_device

OPENABLE_CHAIN = "FORWARD"


def detect_managers(ruleset):
    """Names of the rule owners present, from table and chain names."""
    found = set()
    for item in (ruleset or {}).get("nftables", []):
        chain = item.get("chain")
        table = item.get("table")
        if table and table["name"] == "firewalld":
            found.add("firewalld")
        if table and table["name"].startswith("libvirt"):
            found.add("libvirt")
        if chain:
            name = chain["name"]
            if name.startswith("LIBVIRT_"):
                found.add("libvirt")
            elif name.startswith("DOCKER"):
                found.add("docker")
            elif name.startswith("ufw-") or name.startswith("ufw6-"):
                found.add("ufw")
    return sorted(found)


def _openable(verdict):
    return verdict.table == "filter" and verdict.family in ("ip", "ip6") and verdict.chain == OPENABLE_CHAIN


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


def _instructions(verdict, fwd, proto):
    if verdict.table == "firewalld":
        return "open it through firewalld and run the task again: %s" % _firewalld_commands(fwd, proto)
    return (
        "add an accept for forwarded traffic to %s %s/%s (ct status dnat) to the configuration that owns "
        "table %s %s, or remove that drop, and run the task again"
        % (fwd.destination, proto, fwd.destination_port[0], verdict.family, verdict.table)
    )


def read_ruleset(runner):
    """Everything nftables holds (iptables-nft rules included), or None without nft."""
    if not runner.has("nft"):
        return None
    rc, out, _err = runner.read(["nft", "-j", "list", "ruleset"], check_rc=False)
    return json.loads(out) if rc == 0 and out.strip() else None


def assess(ruleset, forwards, policy, routes, jump_always_there=False):
    """Walk every forward through the others' chains.

    Returns (report, needs_opening): one report entry per finding, and whether our FORWARD
    jump is needed. Raises before anything is changed when a drop cannot be opened and
    ``policy`` is not 'ignore', or when any drop is found and ``policy`` is 'fail'.
    ``jump_always_there`` is true for the iptables backend, whose chains always hang at the
    top of FORWARD. ``routes`` (`ip -j route show` of both families) give each forward's
    output interface.
    """
    if not forwards or ruleset is None:
        return [], False
    managers = detect_managers(ruleset)
    hook = path.ForwardHook(ruleset, skip_tables=_own_tables())
    report = [{"managers": managers}] if managers else []
    needs_opening = False
    problems = []
    for fwd in forwards:
        oif = route_device(routes, fwd.destination)
        for proto in PROTOCOLS[fwd.protocol]:
            packet = path.Packet(fwd.family, proto, fwd.destination, fwd.destination_port[0], fwd.in_interface, oif)
            for verdict in hook.check(packet):
                entry = {
                    "destination": fwd.destination, "protocol": proto, "port": fwd.destination_port[0],
                    "outcome": verdict.outcome, "where": verdict.evidence,
                }
                opens = policy == "open" or (jump_always_there and policy == "ignore")
                if verdict.outcome == path.BLOCKED and _openable(verdict) and opens:
                    needs_opening = True
                    entry["action"] = "opened by our chain jumped to from the top of %s %s FORWARD" % (verdict.family, verdict.table)
                elif verdict.outcome == path.BLOCKED and policy != "ignore":
                    problems.append("%s would drop %s %s port %s: %s" % (
                        verdict.evidence, proto, fwd.destination, fwd.destination_port[0], _instructions(verdict, fwd, proto)))
                    entry["action"] = "refused"
                else:
                    entry["action"] = "none (reported only)"
                report.append(entry)
    if problems:
        raise HypervisorNetworkError(
            "forwarded traffic would not get through: " + " | ".join(problems) + ". Nothing was changed.",
            coexistence=report,
        )
    return report, needs_opening


def _own_tables():
    return ("hypervisor_network_port_forward", "hypervisor_network_masquerade")
