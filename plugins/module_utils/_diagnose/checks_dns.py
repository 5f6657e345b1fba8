# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DNS and DHCP checks: dnsmasq listening, port 53 taken, host nameservers, duplicate DHCP hosts."""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.dns import ANSWERED
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.model import (
    FAIL,
    OK,
    WARN,
    finding,
    gateways,
    module_fix,
    serves_dhcp,
    serves_dns,
)

WILDCARDS = ("0.0.0.0", "::")
RESOLVED_STUBS = ("127.0.0.53", "127.0.0.54")


def _listeners(facts, proto, port, address):
    return [item for item in facts.get("listeners", [])
            if item["proto"] == proto and item["port"] == port and item["address"] in (address,) + WILDCARDS]


def _describe(item):
    return "%s %s:%s %s (pid %s)" % (item["proto"], item["address"], item["port"], item.get("process") or "?", item.get("pid") or "?")


def check_dnsmasq_listening(facts):
    findings = []
    for net in facts.get("networks", []):
        if net["source"] == "libvirt" and not net.get("active", True):
            continue
        wants = []
        if serves_dns(net):
            wants += [("udp", 53), ("tcp", 53)]
        if serves_dhcp(net):
            wants += [("udp", 67)]
        for gateway, _subnet in gateways(net, 4):
            for proto, port in wants:
                found = _listeners(facts, proto, port, gateway)
                subject = "%s:%d/%s (%s)" % (gateway, port, proto, net["name"])
                if found:
                    findings.append(finding("dnsmasq_listening", OK, subject, "listening", evidence=[_describe(i) for i in found]))
                    continue
                status = FAIL if net["source"] == "libvirt" else WARN
                service = "DNS" if port == 53 else "DHCP"
                words = "nothing listens on %s port %d/%s: guests get no %s from the gateway" % (gateway, port, proto, service)
                if net["source"] == "host":
                    words += " (a bridge with an address; a DNS/DHCP server on it is assumed)"
                other = [_describe(i) for i in facts.get("listeners", []) if i["port"] == port]
                fix = "start the network's dnsmasq"
                if net["source"] == "libvirt":
                    fix = ("restart network %s (virsh net-destroy %s; virsh net-start %s), then re-attach the guests' "
                           "taps; look at the port53 finding first if another server holds the port" % ((net["name"],) * 3))
                findings.append(finding("dnsmasq_listening", status, subject, words,
                                        evidence=other or ["no socket on port %d at all" % port], fix=fix))
    return findings


def check_port53(facts):
    """Another server on port 53 of a bridge address or of all addresses keeps dnsmasq out."""
    findings = []
    ours = {gw for net in facts.get("networks", []) for gw, _s in gateways(net, 4) if serves_dns(net)}
    for item in facts.get("listeners", []):
        if item["port"] != 53:
            continue
        process = item.get("process") or ""
        if process == "dnsmasq":
            if item["address"] in WILDCARDS and ours:
                findings.append(finding(
                    "port53", WARN, "%s:53/%s" % (item["address"], item["proto"]),
                    "a dnsmasq listens on port 53 of every address: a second dnsmasq (libvirt's) cannot bind its bridge",
                    evidence=[_describe(item)],
                    fix="give the host's dnsmasq 'bind-interfaces' and 'except-interface=virbr*' (or 'interface=' its own "
                        "interfaces) in /etc/dnsmasq.d, then restart it",
                ))
            continue
        if item["address"] in RESOLVED_STUBS:
            findings.append(finding("port53", OK, "%s:53/%s" % (item["address"], item["proto"]),
                                    "systemd-resolved's stub listens on loopback only; it does not clash with dnsmasq",
                                    evidence=[_describe(item)]))
            continue
        if item["address"] not in WILDCARDS and item["address"] not in ours:
            continue
        if "resolve" in process:
            fix = ("systemd-resolved was told to listen on all addresses: drop DNSStubListenerExtra= (or set "
                   "DNSStubListener=no) in /etc/systemd/resolved.conf, restart systemd-resolved, then restart the network")
        else:
            fix = ("stop %s or make it listen on its own addresses only, then restart the network's dnsmasq"
                   % (process or "that server"))
        findings.append(finding(
            "port53", FAIL, "%s:53/%s" % (item["address"], item["proto"]),
            "port 53 is taken by %s: dnsmasq cannot answer guests on %s" % (process or "an unknown process", ", ".join(sorted(ours)) or "the bridge"),
            evidence=[_describe(item)], fix=fix,
        ))
    if not findings:
        findings.append(finding("port53", OK, "port 53", "no other DNS server in the way of dnsmasq",
                                evidence=[_describe(i) for i in facts.get("listeners", []) if i["port"] == 53]))
    return findings


def _first_answering(probes, servers, name):
    for server in servers:
        if probes.get((server, name)) in ANSWERED:
            return server
    return None


def plan_forwarders(probes, servers, public, domains):
    """(forwarders, refused): forwarders that send every name probed to the first server that
    answers it, and the names that the first nameserver leaves unanswered while a later one answers."""
    first = servers[0]
    default = _first_answering(probes, servers, public) or first
    refused = [public] if default != first else []
    forwarders = []
    for domain in domains:
        server = _first_answering(probes, servers, domain)
        if server is None:
            continue
        if server != first:
            refused.append(domain)
        if server != default:
            forwarders.append({"domain": domain, "addr": server})
    if default != first:
        forwarders.append({"addr": default})
    return forwarders, refused


def _route(net, name, first):
    """The server a network's dnsmasq sends ``name`` to: the forwarder of the longest matching
    domain, else its forwarder without a domain, else the first nameserver of resolv.conf."""
    best, default = None, None
    for fwd in net.get("forwarders") or ():
        domain = fwd.get("domain")
        if not fwd.get("addr"):
            continue
        if not domain:
            default = default or fwd["addr"]
        elif (name == domain or name.endswith("." + domain)) and (best is None or len(domain) > len(best[0])):
            best = (domain, fwd["addr"])
    return best[1] if best else (default or first)


def _unanswered(net, names, probes, first):
    """Names that the network's dnsmasq sends to a server known not to answer them."""
    return [name for name in names if probes.get((_route(net, name, first), name), "NOERROR") not in ANSWERED]


def check_nameservers(facts):
    """Probes of every host nameserver, in resolv.conf order. dnsmasq with strict-order (libvirt
    always sets it) forwards to the first one and hands its REFUSED to the guest, so a REFUSED
    first nameserver breaks every network that takes its upstream from resolv.conf."""
    resolv = facts.get("resolv") or {}
    servers = resolv.get("nameservers") or []
    path = resolv.get("path", "resolv.conf")
    unprobed = _unprobed(facts, resolv, servers, path)
    if unprobed:
        return unprobed
    probes = {(p["server"], p["name"]): p["rcode"] for p in facts["dns_probes"]}
    names = facts.get("dns_names") or {}
    public, domains = names.get("public"), names.get("domains") or []
    dns_nets = [n for n in facts.get("networks", []) if serves_dns(n)]
    evidence = _probe_evidence(facts["dns_probes"], servers, path, dns_nets)
    answering = _first_answering(probes, servers, public)
    if answering is None:
        findings = [finding("nameservers", FAIL, public, "no host nameserver answers %s: the host resolves nothing outside" % public,
                            evidence=evidence, fix="check the host's upstream DNS and its route to it")]
    else:
        findings = _refused_by_first(facts, probes, servers, path, public, domains, dns_nets, answering, evidence)
    for domain in domains:
        if _first_answering(probes, servers, domain) is None:
            findings.append(finding("nameservers", WARN, domain, "no host nameserver answers for %s" % domain, evidence=evidence,
                                    fix="add a forwarder for %s to the server that knows it" % domain))
    silent = sorted({p["server"] for p in facts["dns_probes"] if p["rcode"] in ("TIMEOUT", "UNREACHABLE")})
    if silent and not findings:
        findings.append(finding("nameservers", WARN, ", ".join(silent), "some nameservers do not answer", evidence=evidence))
    if not findings:
        findings.append(finding("nameservers", OK, servers[0], "the first nameserver answers every name probed", evidence=evidence))
    return findings


def _unprobed(facts, resolv, servers, path):
    """The one finding when there is nothing to probe (or probing is off); None otherwise."""
    if resolv.get("error"):
        return [finding("nameservers", WARN, path, "cannot read the host's resolv.conf", evidence=[resolv["error"]])]
    if not servers:
        return [finding("nameservers", WARN, path, "no nameserver in resolv.conf",
                        fix="dnsmasq has no upstream; give the host a nameserver or the network DNS forwarders")]
    if not facts.get("dns_probes"):
        return [finding("nameservers", OK, path, "not probed (probe_dns=false)", evidence=servers)]
    return None


def _probe_evidence(dns_probes, servers, path, dns_nets):
    """Each probe's answer, a warning about systemd-resolved's stub, and each network's forwarders."""
    evidence = ["%s %s: %s%s" % (p["server"], p["name"], p["rcode"], " (%s ms)" % p["ms"] if p.get("ms") is not None else "")
                for p in dns_probes]
    if servers[0] in RESOLVED_STUBS:
        evidence.append("%s points at systemd-resolved's stub, which hides the real upstreams: set resolv_conf to "
                        "/run/systemd/resolve/resolv.conf to probe them" % path)
    evidence += ["network %s forwards: %s" % (n["name"], ", ".join(
        "%s%s" % (f["addr"], " for " + f["domain"] if f.get("domain") else "") for f in n["forwarders"] if f.get("addr")))
        for n in dns_nets if n.get("forwarders")]
    return evidence


def _refused_by_first(facts, probes, servers, path, public, domains, dns_nets, answering, evidence):
    """The finding when the first nameserver refuses names a later one answers: FAIL where a
    network relies on it, OK where none takes resolv.conf, WARN where no network serves DNS."""
    first = servers[0]
    forwarders, refused = plan_forwarders(probes, servers, public, domains)
    if not refused:
        return []
    # Networks whose forwarders still send a refused name to a server that does not answer it.
    relying = [n["name"] for n in dns_nets if _unanswered(n, refused, probes, first)]
    words = "; ".join("%s for %s" % (f["addr"], f["domain"]) if f.get("domain") else "%s for everything else" % f["addr"]
                      for f in forwarders)
    said = "the first nameserver %s does not answer %s (%s), a later one does" % (
        first, ", ".join(refused), ", ".join(sorted({probes.get((first, name)) for name in refused})))
    if relying:
        return [finding(
            "nameservers", FAIL, first,
            "%s: dnsmasq (strict-order) passes that to the guests of %s" % (said, ", ".join(relying)),
            evidence=evidence,
            fix="forwarders in the DNS of %s: %s (plain dnsmasq: server=/domain/addr lines, and server=addr with "
                "no-resolv for everything else); without private domains, putting %s first in %s also does"
                % (", ".join(relying), words, answering, path),
            fix_module=_forwarder_fix(facts, relying, forwarders),
        )]
    if dns_nets:
        return [finding("nameservers", OK, first, "%s; no network uses resolv.conf for its upstream" % said, evidence=evidence)]
    return [finding("nameservers", WARN, first, "%s; no network uses it now, but a dnsmasq with strict-order "
                    "(libvirt's) would pass that to its guests" % said,
                    evidence=evidence, fix="give networks these forwarders: %s" % words)]


def _forwarder_fix(facts, relying, forwarders):
    """The libvirt_network call for the first libvirt network concerned (the same DNS suits each)."""
    names = [n["name"] for n in facts.get("networks", []) if n["source"] == "libvirt" and n["name"] in relying]
    if not names:
        return None
    return module_fix("libvirt_network", name=names[0], dns={"forwarders": forwarders})


def check_dhcp_duplicates(facts):
    findings = []
    for net in facts.get("networks", []):
        entries = []
        for ip in net.get("ips", []):
            entries += [("static", h.get("mac"), h.get("ip"), h.get("name")) for h in ip.get("dhcp_hosts", [])]
        entries += [("lease", lease.get("mac"), lease.get("ip"), lease.get("hostname")) for lease in net.get("leases", [])]
        if not entries:
            continue
        problems = []
        for index, label in ((1, "MAC"), (2, "IP")):
            seen = {}
            for entry in entries:
                if entry[0] == "static" and entry[index]:
                    seen.setdefault(entry[index].lower(), []).append(entry)
            for value, items in sorted(seen.items()):
                if len(items) > 1:
                    problems.append("%s %s in %d static hosts: %s" % (label, value, len(items), ", ".join(str(i[3] or i[1] or i[2]) for i in items)))
        leased = {}
        for kind, mac, ip, _name in entries:
            if kind == "lease" and ip:
                leased.setdefault(ip, set()).add((mac or "").lower())
        problems += ["IP %s leased to %d MACs: %s" % (ip, len(macs), ", ".join(sorted(macs))) for ip, macs in sorted(leased.items()) if len(macs) > 1]
        if problems:
            findings.append(finding("dhcp_duplicates", FAIL, net["name"], "duplicate DHCP hosts: guests fight over one address",
                                    evidence=problems, fix="give every static host its own MAC and IP (libvirt_network ips[].dhcp_hosts)"))
        else:
            findings.append(finding("dhcp_duplicates", OK, net["name"], "%d DHCP host(s)/lease(s), no duplicates" % len(entries)))
    return findings


# dnsmasq's default edns-packet-max since 2.87 (4096 before): the largest UDP answer it sends.
DNSMASQ_EDNS_DEFAULT = 1232
EDNS_PROPOSED = 4096


def edns_packet_max(net):
    """The network's edns-packet-max from its dnsmasq options, else dnsmasq's default."""
    for option in net.get("dnsmasq_options") or ():
        name, _sep, value = option.partition("=")
        if name.strip() == "edns-packet-max" and value.strip().isdigit():
            return int(value.strip())
    return DNSMASQ_EDNS_DEFAULT


def check_edns_size(facts):
    """Large answers (DNSSEC keys, long TXT records) against each network's edns-packet-max:
    an answer larger than it reaches guests truncated, and they must ask again over TCP, which is
    slow and fails where TCP 53 is blocked. The probe asks each host nameserver for
    ``large_answer_name`` three ways: UDP with the 1232-byte payload, UDP with 4096 and TCP."""
    probes = facts.get("large_probes") or []
    name = (facts.get("dns_names") or {}).get("large")
    if not name:
        return [finding("edns_size", OK, "edns-packet-max", "not probed (set large_answer_name to a name with a large answer)")]
    dns_nets = [n for n in facts.get("networks", []) if serves_dns(n)]
    findings = []
    for probe in probes:
        server = probe["server"]
        udp_small, udp_large, tcp = probe["udp_small"], probe["udp_large"], probe["tcp"]
        size = tcp.get("bytes") or (udp_large.get("bytes") if udp_large.get("truncated") is False else None)
        evidence = ["%s %s over %s, payload %s: %s, %s bytes%s" % (
            server, name, q["transport"], q["payload"], q["rcode"], q.get("bytes"), ", truncated" if q.get("truncated") else "")
            for q in (udp_small, udp_large, tcp)]
        if size is None:
            findings.append(finding("edns_size", WARN, "%s %s" % (server, name), "no answer for %s, over UDP or TCP" % name,
                                    evidence=evidence, fix="choose a large_answer_name this nameserver answers"))
            continue
        fragments_dropped = udp_large.get("rcode") == "TIMEOUT" and tcp.get("bytes")
        for net in dns_nets:
            limit = edns_packet_max(net)
            subject = "%s via %s (%s)" % (name, server, net["name"])
            net_evidence = evidence + ["network %s: edns-packet-max %d%s" % (
                net["name"], limit, "" if any(o.startswith("edns-packet-max") for o in net.get("dnsmasq_options") or ())
                else " (dnsmasq's default)")]
            if fragments_dropped:
                findings.append(finding(
                    "edns_size", WARN, subject,
                    "a %d-byte answer never arrives over UDP while TCP brings it: the path drops IP fragments" % size,
                    evidence=net_evidence,
                    fix="keep edns-packet-max at %d or below so answers fit one packet, and let TCP 53 through for the "
                        "larger ones" % DNSMASQ_EDNS_DEFAULT))
            elif size > limit:
                fixmod = None
                if net["source"] == "libvirt":
                    options = [o for o in net.get("dnsmasq_options") or () if not o.startswith("edns-packet-max")]
                    fixmod = module_fix("libvirt_network", name=net["name"],
                                        dnsmasq_options=options + ["edns-packet-max=%d" % max(EDNS_PROPOSED, size)])
                findings.append(finding(
                    "edns_size", WARN, subject,
                    "the answer is %d bytes, more than edns-packet-max %d: guests get it truncated and must ask again "
                    "over TCP (slow, and a failure where TCP 53 is blocked)" % (size, limit),
                    evidence=net_evidence,
                    fix="raise dnsmasq's edns-packet-max to %d (the path carried %d-byte UDP answers whole)"
                        % (max(EDNS_PROPOSED, size), size), fix_module=fixmod))
            else:
                findings.append(finding("edns_size", OK, subject, "the %d-byte answer fits edns-packet-max %d" % (size, limit),
                                        evidence=net_evidence))
    if not findings:
        findings.append(finding("edns_size", OK, "edns-packet-max", "no nameserver probed", evidence=[name]))
    return findings
