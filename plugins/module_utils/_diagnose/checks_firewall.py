# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host firewall checks: what the guests send to the host (DNS, DHCP, ping of the gateway) on
the input hook, and what they send out to the world on the forward hook.

The walk is foreign.py's, the one the forward_path check and port_forward use. It walks the
base chains of the forward hook; for the input hook the same chains map is given to it with the
input base chains presented as the forward ones (``_as_forward``), so that one walker, with its
notes on rules it does not understand, judges both hooks. ufw's and firewalld's chains are
ordinary chains reached by jumps from these base chains, and are walked the same way.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.model import (
    FAIL,
    OK,
    WARN,
    finding,
    gateways,
    is_nat,
    serves_dhcp,
    serves_dns,
)

# (label, protocol, destination port or None, to the broadcast address) of what a guest asks the host.
SERVICES_DNS = (("DNS", "udp", 53), ("DNS over TCP", "tcp", 53))
SERVICE_DHCP = ("DHCP", "udp", 67)
SERVICE_PING = ("ping", "icmp", None)
OUTBOUND_SAMPLE = ("tcp", 443)


def _chains(facts):
    return {tuple(key.split(" ")): body for key, body in (facts.get("chains") or {}).items()}


def _as_forward(chains, hook):
    """The chains with the base chains of ``hook`` shown as the forward hook's (and the real
    forward base chains hidden), so foreign.forward_verdicts walks ``hook``."""
    view = {}
    for key, body in chains.items():
        if body.get("hook") == hook:
            view[key] = dict(body, hook="forward")
        elif body.get("hook") == "forward":
            view[key] = dict(body, hook=None)
        else:
            view[key] = body
    return view


def _sample_guest(subnet, gateway):
    """An address of a guest: the first one of the subnet that is not the gateway."""
    for host in ipaddress.ip_network(subnet).hosts():
        if str(host) != gateway:
            return str(host)
    return gateway


def _owner(first, chains):
    """Who wrote the rule (or policy) that stopped the packet: ufw keeps its rules in ufw-* chains
    of the iptables filter table, and its default deny is that table's policy."""
    by = first["by"]
    family, table, _chain = first["key"]
    if "ufw" in by or any(key[:2] == (family, table) and key[2].startswith("ufw-") for key in chains):
        return "ufw"
    if "firewalld" in by:
        return "firewalld"
    if by.startswith("iptables-legacy") or "legacy-filter" in by:
        return "iptables-legacy"
    if by.startswith("iptables-nft") or "policy of ip filter" in by or "policy of ip6 filter" in by:
        return "iptables-nft"
    return "nft"


def _words(verdict):
    return {"drop": "dropped", "reject": "rejected"}.get(verdict, verdict)


def _input_fix(first, chains, bridge, proto, port):
    owner = _owner(first, chains)
    family, table, chain = first["chain"].split(" ")
    port_words = " --dport %d" % port if port else ""
    if owner == "ufw":
        if port:
            return "ufw allow in on %s proto %s to any port %d" % (bridge, proto, port)
        return ("ufw has no command for icmp: add '-A ufw-before-input -i %s -p icmp -j ACCEPT' to "
                "/etc/ufw/before.rules, then ufw reload" % bridge)
    if owner == "firewalld":
        return ("firewall-cmd --permanent --zone=libvirt --change-interface=%s && firewall-cmd --reload (the libvirt zone "
                "accepts DNS, DHCP and ping from guests)" % bridge)
    if owner.startswith("iptables"):
        binary = "iptables-legacy" if owner == "iptables-legacy" else "iptables"
        table_name = table[len(nf.LEGACY_PREFIX):] if table.startswith(nf.LEGACY_PREFIX) else table
        return "%s -t %s -I %s 1 -i %s -p %s%s -j ACCEPT" % (binary, table_name, chain, bridge, proto, port_words)
    match = "%s dport %d" % (proto, port) if port else "meta l4proto icmp"
    return "nft insert rule %s %s %s iifname \"%s\" %s accept" % (family, table, chain, bridge, match)


def _walk_lines(verdicts):
    lines = ["%s: %s (%s)" % (v["chain"], v["verdict"], v["by"]) for v in verdicts]
    return lines + [note for v in verdicts for note in v["notes"]]


def check_input_path(facts):
    """Guests' DNS (udp and tcp 53) and DHCP (udp 67) to the gateway, and their ping of it,
    through every base chain of the input hook."""
    chains = _as_forward(_chains(facts), "input")
    findings = []
    for net in facts.get("networks", []):
        bridge = net.get("bridge")
        if not bridge or (net["source"] == "libvirt" and not net.get("active", True)):
            continue
        services = []
        if serves_dns(net):
            services += SERVICES_DNS
        if serves_dhcp(net):
            services.append(SERVICE_DHCP)
        services.append(SERVICE_PING)
        for gateway, subnet in gateways(net, 4):
            guest = _sample_guest(subnet, gateway)
            for label, proto, port in services:
                dhcp = port == 67
                packet = {"nfproto": "ipv4", "iif": bridge, "oif": None, "saddr": "0.0.0.0" if dhcp else guest,
                          "daddr": "255.255.255.255" if dhcp else gateway, "proto": proto, "sport": 68 if dhcp else None,
                          "dport": port, "ct": ["new"]}
                verdicts = nf.forward_verdicts(chains, packet)
                subject = "%s to %s on %s" % (label, gateway, bridge)
                evidence = ["packet: in %s from %s to %s %s%s, ct new" % (
                    bridge, packet["saddr"], packet["daddr"], proto, "/%d" % port if port else "")] + _walk_lines(verdicts)
                blocked = [v for v in verdicts if v["verdict"] != "accept"]
                if blocked:
                    first = blocked[0]
                    findings.append(finding(
                        "input_path", FAIL, subject,
                        "the guests' %s to the host is %s by %s" % (label, _words(first["verdict"]), first["by"]),
                        evidence=evidence, fix=_input_fix(first, chains, bridge, proto, port)))
                    continue
                unsure = any(v["notes"] for v in verdicts)
                summary = "accepted by every input base chain" if verdicts else "no input filter chains: nothing blocks it"
                findings.append(finding("input_path", WARN if unsure else OK, subject,
                                        summary + (", but some rules were not understood (see evidence)" if unsure else ""),
                                        evidence=evidence))
    return findings


def _outbound_fix(first, chains, bridge, subnet, uplink, reply):
    owner = _owner(first, chains)
    family, table, chain = first["chain"].split(" ")
    if owner == "ufw":
        return "ufw route allow in on %s%s" % (bridge, " out on %s" % uplink if uplink else "")
    if owner == "firewalld":
        return "put %s in the libvirt zone, or add a policy from it to the uplink's zone (firewall-cmd --new-policy)" % bridge
    if owner.startswith("iptables"):
        binary = "iptables-legacy" if owner == "iptables-legacy" else "iptables"
        table_name = table[len(nf.LEGACY_PREFIX):] if table.startswith(nf.LEGACY_PREFIX) else table
        if reply:
            return "%s -t %s -I %s 1 -o %s -d %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" % (
                binary, table_name, chain, bridge, subnet)
        return "%s -t %s -I %s 1 -i %s -s %s -j ACCEPT" % (binary, table_name, chain, bridge, subnet)
    if reply:
        return "nft insert rule %s %s %s oifname \"%s\" ip daddr %s ct state established,related accept" % (
            family, table, chain, bridge, subnet)
    return "nft insert rule %s %s %s iifname \"%s\" ip saddr %s accept" % (family, table, chain, bridge, subnet)


def check_outbound_path(facts):
    """A guest's new outbound connection (tcp 443 to anywhere, out of the default route's
    device) and the replies to it, through every base chain of the forward hook."""
    chains = _chains(facts)
    uplink = facts.get("default_route_dev")
    findings = []
    for net in facts.get("networks", []):
        bridge = net.get("bridge")
        if not bridge or not (is_nat(net) or net.get("forward_mode") in ("route", "open")):
            continue
        if net["source"] == "libvirt" and not net.get("active", True):
            continue
        for gateway, subnet in gateways(net, 4):
            guest = _sample_guest(subnet, gateway)
            proto, port = OUTBOUND_SAMPLE
            packet = {"nfproto": "ipv4", "iif": bridge, "oif": uplink, "saddr": guest, "daddr": None, "proto": proto,
                      "sport": None, "dport": port, "ct": ["new"]}
            reply = {"nfproto": "ipv4", "iif": uplink, "oif": bridge, "saddr": None, "daddr": guest, "proto": proto,
                     "sport": port, "dport": None, "ct": ["established"]}
            out, back = nf.forward_verdicts(chains, packet), nf.forward_verdicts(chains, reply)
            subject = "%s (%s) outbound" % (subnet, net["name"])
            evidence = ["packet: in %s out %s from %s %s/%d, ct new" % (bridge, uplink or "?", guest, proto, port)]
            evidence += ["new: " + line for line in _walk_lines(out)] + ["reply: " + line for line in _walk_lines(back)]
            blocked = [v for v in out if v["verdict"] != "accept"]
            blocked_back = [v for v in back if v["verdict"] != "accept"]
            if blocked or blocked_back:
                first = (blocked or blocked_back)[0]
                what = "the guests' outbound connections are" if blocked else "the replies to the guests' connections are"
                findings.append(finding(
                    "outbound_path", FAIL, subject, "%s %s by %s: guests reach nothing beyond the host" % (
                        what, _words(first["verdict"]), first["by"]),
                    evidence=evidence, fix=_outbound_fix(first, chains, bridge, subnet, uplink, reply=not blocked)))
                continue
            unsure = any(v["notes"] for v in out + back)
            summary = "every forward base chain lets the guests out and their replies in" if out else \
                "no forward filter chains: nothing blocks the guests' traffic"
            findings.append(finding("outbound_path", WARN if unsure else OK, subject,
                                    summary + (", but some rules were not understood (see evidence)" if unsure else ""),
                                    evidence=evidence))
    return findings
