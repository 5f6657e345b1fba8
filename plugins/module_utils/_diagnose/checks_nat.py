# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT checks: a masquerade for every NAT subnet, and the forward path of every port forward."""

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
    module_fix,
)


def _covers(rule, subnet):
    """Does a masquerade/SNAT rule apply to traffic from ``subnet``? Rules that also match on
    destination or interface still count: libvirt's own leave out the subnet itself."""
    net = ipaddress.ip_network(subnet)
    for key, negated, values in rule["matches"]:
        if key == "saddr":
            inside = any(_within(net, value) for value in values)
            if inside == negated:
                return False
        elif key == "nfproto":
            wanted = "ipv4" if net.version == 4 else "ipv6"
            if (wanted in values) == negated:
                return False
    family = rule["family"]
    return family == "inet" or (family == "ip") == (net.version == 4)


def _within(net, value):
    try:
        other = ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return other.version == net.version and net.subnet_of(other)


def check_masquerade(facts):
    findings = []
    rules = [r for r in facts.get("nat_rules", []) if r["kind"] in ("masquerade", "snat")]
    uplink = facts.get("default_route_dev")
    for net in facts.get("networks", []):
        if not is_nat(net):
            continue
        for _gateway, subnet in gateways(net, 4):
            covering = [r for r in rules if _covers(r, subnet)]
            subject = "%s (%s)" % (subnet, net["name"])
            if covering:
                findings.append(finding("masquerade", OK, subject, "source NAT in place",
                                        evidence=["%s: %s" % (r["where"], r["text"]) for r in covering[:3]]))
                continue
            config = {"source": subnet}
            if uplink:
                config["out_interface"] = uplink
            status = FAIL if net["source"] == "libvirt" else WARN
            words = "no masquerade or SNAT rule for %s: guests cannot reach anything beyond the host" % subnet
            if net["source"] == "host":
                words += " (the bridge has a private subnet, so NAT is assumed to be wanted)"
            fix = "add a masquerade rule for %s" % subnet
            if net["source"] == "libvirt":
                fix += ("; libvirt adds its own when the network starts, so something removed it (a firewall "
                        "reload?): restart the network, or add one that stays")
            findings.append(finding("masquerade", status, subject, words,
                                    evidence=["%d masquerade/SNAT rule(s) seen, none for this subnet" % len(rules)]
                                    + list(facts.get("netfilter_errors") or []),
                                    fix=fix, fix_module=module_fix("masquerade", config=[config])))
    return findings


def _network_of(facts, address):
    addr = ipaddress.ip_address(address)
    for net in facts.get("networks", []):
        for _gw, subnet in gateways(net, addr.version):
            if addr in ipaddress.ip_network(subnet):
                return net
    return None


def forward_packet(facts, fwd):
    """The first packet of a forwarded connection as the forward hook sees it."""
    net = _network_of(facts, fwd["destination"])
    version = ipaddress.ip_address(fwd["destination"]).version
    return net, {
        "nfproto": "ipv4" if version == 4 else "ipv6",
        "iif": fwd.get("in_interface") or facts.get("default_route_dev"),
        "oif": net.get("bridge") if net else None,
        "saddr": None,  # any outside client
        "daddr": fwd["destination"],
        "proto": fwd["protocol"],
        "sport": None,  # any client port
        "dport": fwd["destination_port"],
        "ct": ["new", "dnat"],
    }


def _iptables_owned(by):
    return by.startswith("iptables-") or by.startswith("policy of ip filter") or by.startswith("policy of ip6 filter") \
        or by.startswith("policy of ip legacy-filter") or by.startswith("policy of ip6 legacy-filter")


def reply_packet(packet):
    """The guest's answer going back out: from the guest, to any client, conntrack established."""
    return dict(packet, iif=packet["oif"], oif=packet["iif"], saddr=packet["daddr"], daddr=None, dport=None,
                sport=packet["dport"], ct=["established", "dnat"])


def _walk_evidence(label, verdicts):
    lines = ["%s: %s: %s (%s)" % (label, v["chain"], v["verdict"], v["by"]) for v in verdicts]
    return lines + ["%s: %s" % (label, note) for v in verdicts for note in v["notes"]]


def check_forward_path(facts):
    chains = {tuple(key.split(" ")): body for key, body in (facts.get("chains") or {}).items()}
    findings = []
    if facts.get("netfilter_errors"):
        # without all the rules, neither the forwards nor what blocks them are known for sure
        findings.append(finding("forward_path", WARN, "netfilter", "some rules could not be read; forwards and their paths "
                                "are judged from the rest", evidence=facts["netfilter_errors"],
                                fix="run diagnose as root (become: true) on a host with nft or iptables installed"))
    for fwd in nf.unique_forwards(facts.get("port_forwards", [])):
        net, packet = forward_packet(facts, fwd)
        subject = "%s/%s -> %s:%s" % (fwd["protocol"], fwd["host_port"], fwd["destination"], fwd["destination_port"])
        verdicts = nf.forward_verdicts(chains, packet)
        replies = nf.forward_verdicts(chains, reply_packet(packet))
        evidence = ["packet: in %s out %s to %s %s/%s, ct new+dnat" % (
            packet["iif"] or "?", packet["oif"] or "?", packet["daddr"], packet["proto"], packet["dport"])]
        evidence += _walk_evidence("new", verdicts) + _walk_evidence("reply", replies)
        if net is None:
            evidence.append("destination %s is on none of the networks looked at" % fwd["destination"])
        blocked = [v for v in verdicts if v["verdict"] != "accept"]
        blocked_replies = [v for v in replies if v["verdict"] != "accept"]
        if blocked:
            findings.append(_blocked_new(fwd, packet, subject, blocked[0], evidence))
        elif blocked_replies:
            first = blocked_replies[0]
            findings.append(finding(
                "forward_path", FAIL, subject,
                "the connection gets in, but the guest's replies are %sed by %s" % (first["verdict"].rstrip("e"), first["by"]),
                evidence=evidence,
                fix="accept established connections in %s: iptables -I FORWARD 1 -m conntrack --ctstate RELATED,ESTABLISHED "
                    "-j ACCEPT, or in nftables: ct state established,related accept" % first["chain"],
            ))
        else:
            unsure = any(v["notes"] for v in verdicts + replies)
            summary = "every forward base chain accepts it and its replies" if verdicts else "no forward filter chains: nothing blocks it"
            if unsure:
                summary += ", but some rules were not understood (see evidence)"
            findings.append(finding("forward_path", WARN if unsure else OK, subject, summary, evidence=evidence))
    return findings


def _blocked_new(fwd, packet, subject, first, evidence):
    libvirt = "LIBVIRT_" in first["by"] or "libvirt" in first["by"]
    summary = "the forwarded connection is %sed by %s" % (first["verdict"].rstrip("e"), first["by"])
    if libvirt:
        summary += ": libvirt's NAT rules let only replies into the network"
    fix = ("accept the DNAT'ed connection before that rule: every base chain of the forward hook must accept "
           "it, an accept in another table does not help")
    fixmod = None
    if _iptables_owned(first["by"]):
        # port_forward's iptables backend inserts its chain at the top of FORWARD, ahead of
        # libvirt's jumps and of the policy, in the same table that drops the packet.
        variant = "legacy" if "legacy" in first["by"] else "nft"
        fixmod = module_fix("port_forward", backend="iptables", iptables_variant=variant, config=[{
            "protocol": fwd["protocol"], "host_port": str(fwd["host_port"]),
            "destination": fwd["destination"], "destination_port": str(fwd["destination_port"])}])
        fix += ("; hypervisor.network.port_forward with the iptables backend puts its accept first in FORWARD "
                "(then remove the forward from where it was written before, so that it exists once)")
    else:
        family, table, chain = first["chain"].split(" ")
        fix += ": nft insert rule %s %s %s ct status dnat %s daddr %s %s dport %s accept" % (
            family, table, chain, "ip" if packet["nfproto"] == "ipv4" else "ip6", packet["daddr"],
            packet["proto"], packet["dport"])
    return finding("forward_path", FAIL, subject, summary, evidence=evidence, fix=fix, fix_module=fixmod)


def check_forward_duplicates(facts):
    """The same host port forwarded twice: to two guests (the first rule wins, the second is
    dead), or to the same guest by two owners (removing one leaves the other behind)."""
    groups = {}
    for fwd in facts.get("port_forwards", []):
        groups.setdefault((fwd["protocol"], fwd["host_port"], fwd.get("in_interface")), []).append(fwd)
    findings = []
    for (proto, port, iif), fwds in sorted(groups.items(), key=str):
        subject = "%s/%s%s" % (proto, port, " on %s" % iif if iif else "")
        evidence = ["%s -> %s:%s" % (f["where"], f["destination"], f["destination_port"]) for f in fwds]
        targets = sorted({(f["destination"], f["destination_port"]) for f in fwds})
        if len(fwds) == 1:
            findings.append(finding("port_forward_duplicates", OK, subject, "forwarded once", evidence=evidence))
        elif len(targets) > 1:
            findings.append(finding(
                "port_forward_duplicates", FAIL, subject,
                "forwarded to %d destinations; only the first DNAT rule the packet meets applies" % len(targets),
                evidence=evidence, fix="keep one forward per host port: remove the others from their owners' rules"))
        else:
            findings.append(finding(
                "port_forward_duplicates", WARN, subject, "the same forward is written %d times" % len(fwds),
                evidence=evidence,
                fix="keep it in one place (hypervisor.network.port_forward state=overridden for the collection's own); "
                    "a copy left elsewhere outlives the removal of the other"))
    return findings
