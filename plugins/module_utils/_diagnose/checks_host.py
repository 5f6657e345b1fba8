# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the host itself: libvirt, bridges, forwarding, tap drops, libvirtd's log, firewalld.

Each check is a pure function: facts in, findings out.
"""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.model import FAIL, OK, WARN, finding, gateways, is_nat, module_fix

IPV4_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"
ROUTED_MODES = ("nat", "route", "open")

# libvirtd log messages and what they mean in the field.
LOG_PATTERNS = (
    ("No buffer space available",
     "a netlink or socket buffer overflowed (ENOBUFS): raise net.core.rmem_max/wmem_max, look for "
     "drops on the guests' taps and tune their virtio queues"),
    ("Address already in use",
     "something already holds a port libvirt's dnsmasq needs (53 or 67); see the port53 finding"),
    ("failed to create listening socket",
     "dnsmasq could not bind; another DNS server holds port 53 on the bridge address or on all addresses"),
    ("Cannot allocate memory", "the host ran short of memory while libvirt set up networking"),
)


def check_libvirt(facts):
    info = facts.get("libvirt") or {}
    missing = [finding("libvirt_connection", FAIL, name, "libvirt network %s is not defined" % name,
                       fix="define it, with hypervisor.network.libvirt_network") for name in info.get("missing") or ()]
    return missing + _connection(info)


def _connection(info):
    if not info.get("enabled", True):
        return [finding("libvirt_connection", OK, info.get("uri", "libvirt"), "libvirt not consulted (libvirt=false)")]
    if info.get("reachable") and info.get("errors"):
        return [finding("libvirt_connection", WARN, info["uri"], "libvirt answers, but %d network(s) could not be read"
                        % len(info["errors"]), evidence=info["errors"],
                        fix="look at those networks with 'virsh net-dumpxml NAME'; they were left out of the checks")]
    if info.get("reachable"):
        return [finding("libvirt_connection", OK, info["uri"], "libvirt answers; %d network(s) read" % info.get("count", 0))]
    return [finding(
        "libvirt_connection", WARN, info.get("uri", "qemu:///system"),
        "libvirt is not reachable; networks were read from the host's bridges only",
        evidence=[info.get("error") or "no answer"],
        fix="start libvirtd (systemctl start libvirtd, or virtqemud.socket and virtnetworkd.socket), install "
            "libvirt-python on the host (python3-libvirt), or point the uri option at the right daemon",
    )]


def _ports(facts, bridge):
    return sorted(name for name, link in facts.get("links", {}).items() if link.get("master") == bridge)


def check_bridges(facts):
    findings = []
    links = facts.get("links", {})
    for net in facts.get("networks", []):
        bridge = net.get("bridge")
        if not bridge:
            continue
        subject = "%s (%s)" % (bridge, net["name"]) if net["name"] != bridge else bridge
        link = links.get(bridge)
        if link is None:
            fix = "start the network: virsh net-start %s" % net["name"] if net["source"] == "libvirt" else "create the bridge"
            fixmod = module_fix("libvirt_network", name=net["name"], active=True) if net["source"] == "libvirt" \
                else module_fix("bridge", name=bridge, state="present")
            if net["source"] == "libvirt" and not net.get("active", True):
                findings.append(finding("bridge_exists", WARN, subject, "network %s is not active, so its bridge does not exist" % net["name"],
                                        fix=fix, fix_module=fixmod))
            else:
                findings.append(finding("bridge_exists", FAIL, subject, "bridge %s does not exist" % bridge, fix=fix, fix_module=fixmod))
            continue
        findings.append(finding("bridge_exists", OK, subject, "bridge exists", evidence=["kind=%s" % link.get("kind")]))
        if not link.get("up"):
            findings.append(finding("bridge_up", FAIL, subject, "bridge is administratively down",
                                    evidence=["flags without UP, operstate %s" % link.get("operstate")],
                                    fix="ip link set dev %s up" % bridge,
                                    fix_module=module_fix("bridge", name=bridge, state="present")))
        else:
            findings.append(finding("bridge_up", OK, subject, "bridge is up", evidence=["operstate %s" % link.get("operstate")]))
        ports = _ports(facts, bridge)
        if not ports:
            findings.append(finding("bridge_ports", WARN, subject, "bridge has no ports: no guest is attached",
                                    fix="start a guest on network %s, or attach its interface to %s" % (net["name"], bridge)))
        else:
            findings.append(finding("bridge_ports", OK, subject, "%d port(s)" % len(ports), evidence=ports))
            findings.append(_mtu_finding(net, subject, link, {p: links[p] for p in ports}))
    return findings


def _mtu_finding(net, subject, link, ports):
    mtus = {name: port.get("mtu") for name, port in ports.items()}
    evidence = ["%s mtu %s" % (net["bridge"], link.get("mtu"))] + ["%s mtu %s" % item for item in sorted(mtus.items())]
    # One port with a small MTU drags the bridge down to it (the kernel keeps a bridge at its
    # smallest port's MTU unless one was set): then the largest port MTU is the one meant.
    port_mtus = [m for m in mtus.values() if m]
    dragged = port_mtus and link.get("mtu") == min(port_mtus) < max(port_mtus)
    wanted = net.get("mtu") or (max(port_mtus) if dragged else link.get("mtu"))
    odd = sorted(name for name, mtu in mtus.items() if mtu != wanted)
    if link.get("mtu") != wanted:
        odd.append(net["bridge"])
    if not odd:
        return finding("bridge_mtu", OK, subject, "bridge and ports agree on MTU %s" % wanted, evidence=evidence)
    return finding(
        "bridge_mtu", WARN, subject,
        "MTU differs from %s on %s: large packets are dropped silently on the way" % (wanted, ", ".join(odd)),
        evidence=evidence,
        fix="give them MTU %s: %s" % (wanted, "; ".join("ip link set dev %s mtu %s" % (name, wanted) for name in odd)),
    )


def check_forwarding(facts):
    sysctl = facts.get("sysctl", {})
    routed = [n for n in facts.get("networks", []) if n.get("forward_mode") in ROUTED_MODES or is_nat(n)]
    findings = []
    for family, key, option in ((4, IPV4_FORWARD, "ipv4"), (6, IPV6_FORWARD, "ipv6")):
        needing = sorted(n["name"] for n in routed if gateways(n, family))
        value = sysctl.get(key)
        evidence = ["%s = %s" % (key, value)]
        if value == 1:
            findings.append(finding("ip_forward", OK, option, "IPv%d forwarding is on" % family, evidence=evidence))
        elif needing:
            findings.append(finding(
                "ip_forward", FAIL, option,
                "IPv%d forwarding is off: guests of %s reach nothing beyond the host" % (family, ", ".join(needing)),
                evidence=evidence + ["routed/NAT networks with IPv%d: %s" % (family, ", ".join(needing))],
                fix="turn on IPv%d forwarding, at runtime and in /etc/sysctl.d" % family,
                fix_module=module_fix("ip_forward", **{option: True}),
            ))
        else:
            findings.append(finding("ip_forward", OK, option, "IPv%d forwarding is off and no network needs it" % family,
                                    evidence=evidence))
    return findings


def check_tap_drops(facts, threshold=0):
    """Drops counted by the kernel on each bridge port, since the baseline when one is given."""
    findings = []
    counters, baseline = facts.get("counters", {}), facts.get("baseline") or {}
    for net in facts.get("networks", []):
        for port in _ports(facts, net.get("bridge")):
            now = counters.get(port)
            if now is None:
                continue
            base = baseline.get(port) or {}
            delta = {key: now.get(key, 0) - base.get(key, 0) for key in ("rx_dropped", "tx_dropped", "rx_packets", "tx_packets")}
            if any(value < 0 for value in delta.values()):  # the device was re-created since the baseline
                delta = dict((key, now.get(key, 0)) for key in delta)
            since = " since the baseline" if base else ""
            evidence = ["%s%s: rx_dropped=%d tx_dropped=%d rx_packets=%d tx_packets=%d txqueuelen=%s" % (
                port, since, delta["rx_dropped"], delta["tx_dropped"], delta["rx_packets"], delta["tx_packets"],
                facts.get("links", {}).get(port, {}).get("txqlen"))]
            dropped = delta["rx_dropped"] + delta["tx_dropped"]
            subject = "%s on %s" % (port, net["bridge"])
            if dropped <= threshold:
                findings.append(finding("tap_drops", OK, subject, "no drops%s" % since, evidence=evidence))
                continue
            findings.append(finding(
                "tap_drops", WARN, subject,
                "%d packet(s) dropped%s: the guest does not drain its queue fast enough (DNS timeouts follow)" % (dropped, since),
                evidence=evidence,
                fix="give the guest's interface more and longer virtio queues: in the domain XML "
                    "<interface><driver name='vhost' queues='N' rx_queue_size='1024' tx_queue_size='1024'/></interface> "
                    "(N = vCPUs, then 'ethtool -L eth0 combined N' in the guest), and on the host "
                    "'ip link set dev %s txqueuelen 10000'" % port,
            ))
    return findings


def check_libvirtd_log(facts):
    lines = facts.get("log_lines") or []
    files = list(facts.get("log_files_read") or [])
    if facts.get("journal_read"):
        files.append("the journal (libvirtd, virtnetworkd, virtqemud, dnsmasq)")
    if not lines:
        if not files:
            return [finding("libvirtd_log", WARN, "libvirtd log", "nothing to read: no log file of log_files exists and "
                            "there is no journal, so messages such as 'No buffer space available' cannot be seen",
                            fix="point log_files at libvirtd's log (log_outputs in /etc/libvirt/libvirtd.conf)")]
        return [finding("libvirtd_log", OK, "libvirtd log", "no known error messages",
                        evidence=["read: %s" % ", ".join(files)])]
    findings = []
    for pattern, meaning in LOG_PATTERNS:
        hits = [item for item in lines if pattern in item["line"]]
        if hits:
            findings.append(finding(
                "libvirtd_log", WARN, pattern, "%d log line(s) say %r" % (len(hits), pattern),
                evidence=["%s: %s" % (hit["file"], hit["line"]) for hit in hits[-3:]],
                fix=meaning,
            ))
    return findings


NEIGH_BAD = ("FAILED", "INCOMPLETE")


def check_neighbours(facts):
    """The host's neighbour (ARP) entries on each bridge: a FAILED or INCOMPLETE one is a guest
    address the host asked for and got no answer from, so the host (and DNAT through it) cannot
    reach that guest: the guest is down, has another address, or drops ARP."""
    findings = []
    table = facts.get("neighbours") or {}
    for net in facts.get("networks", []):
        bridge = net.get("bridge")
        if not bridge or bridge not in table:
            continue
        entries = table[bridge]
        bad = [e for e in entries if set(e.get("state") or ()) & set(NEIGH_BAD)]
        evidence = ["%s %s %s" % (e.get("dst"), e.get("lladdr") or "-", ",".join(e.get("state") or ())) for e in entries]
        subject = "%s (%s)" % (bridge, net["name"]) if net["name"] != bridge else bridge
        if bad:
            findings.append(finding(
                "neighbours", WARN, subject,
                "the host gets no ARP answer from %s: it cannot reach %s" % (
                    ", ".join(e.get("dst") or "?" for e in bad), "that guest" if len(bad) == 1 else "those guests"),
                evidence=evidence,
                fix="check that the guest is running and has that address (its lease, its static config), that its "
                    "interface is a port of %s and up, and that no firewall in the guest drops ARP" % bridge))
        else:
            findings.append(finding("neighbours", OK, subject, "%d neighbour(s), none failed" % len(entries), evidence=evidence))
    return findings


def check_firewalld(facts):
    info = facts.get("firewalld") or {}
    if not info.get("running"):
        return [finding("firewalld_zone", OK, "firewalld", "firewalld is not running")]
    findings = []
    for net in facts.get("networks", []):
        bridge = net.get("bridge")
        if not bridge:
            continue
        zone = (info.get("zones") or {}).get(bridge)
        wanted = "libvirt" if net["source"] == "libvirt" else zone
        evidence = ["firewall-cmd --get-zone-of-interface=%s: %s" % (bridge, zone or "no zone")]
        if zone and zone == wanted:
            findings.append(finding("firewalld_zone", OK, bridge, "bridge is in zone %s" % zone, evidence=evidence))
            continue
        findings.append(finding(
            "firewalld_zone", WARN, bridge,
            "bridge is in %s, not in the 'libvirt' zone: DNS and DHCP from guests may be rejected" % ("zone " + zone if zone else "no zone"),
            evidence=evidence,
            fix="firewall-cmd --permanent --zone=libvirt --change-interface=%s && firewall-cmd --reload" % bridge,
        ))
    return findings
