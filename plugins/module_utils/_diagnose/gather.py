# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gathering for diagnose: read the host into plain facts, change nothing.

Only runner.read is used, and files under /proc and /sys are read directly. The one thing
that leaves the host is the DNS probe, and only towards the nameservers of the resolv.conf the
module was pointed at.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose import dns
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._sysctl import IPV4_FORWARD, IPV6_FORWARD, read_value

STAT_KEYS = ("rx_dropped", "tx_dropped", "rx_packets", "tx_packets")
# /proc/net/tcp state 0A is LISTEN; an unconnected UDP socket shows 07 (CLOSE).
LISTEN_STATES = {"tcp": "0A", "udp": "07"}
PORTS_OF_INTEREST = (53, 67)
LOG_TAIL_BYTES = 1 << 20


def links(runner):
    out = {}
    for item in runner.read_json(["ip", "-j", "-d", "link", "show"]) or []:
        info = item.get("linkinfo") or {}
        out[item["ifname"]] = {
            "up": "UP" in item.get("flags", []),
            "operstate": item.get("operstate"),
            "mtu": item.get("mtu"),
            "master": item.get("master"),
            "kind": info.get("info_kind"),
            "txqlen": item.get("txqlen"),
        }
    return out


def addresses(runner):
    out = {}
    for item in runner.read_json(["ip", "-j", "addr", "show"]) or []:
        out[item["ifname"]] = ["%s/%s" % (a["local"], a["prefixlen"]) for a in item.get("addr_info", [])
                               if a.get("family") in ("inet", "inet6") and a.get("scope") != "link"]
    return out


def neighbours(runner, devices):
    """The kernel's neighbour (ARP/NDP) entries on ``devices``: {dev: [{dst, lladdr, state}]}."""
    out = {dev: [] for dev in devices}
    rc, text, _err = runner.read(["ip", "-j", "neigh", "show"], check_rc=False)
    if rc != 0 or not text.strip():
        return out
    for item in json.loads(text):
        if item.get("dev") in out:
            out[item["dev"]].append({"dst": item.get("dst"), "lladdr": item.get("lladdr"),
                                     "state": [s.upper() for s in item.get("state") or []]})
    return out


JOURNAL_IDENTIFIERS = ("libvirtd", "virtnetworkd", "virtqemud", "dnsmasq", "dnsmasq-dhcp")


def journal_lines(runner, patterns, max_age_hours, identifiers=JOURNAL_IDENTIFIERS):
    """(hits, read): journal lines of libvirt's daemons and dnsmasq of the last ``max_age_hours``
    that carry a known message, and whether there was a journal to read (no journalctl, or no
    journal files: False). A libvirtd under systemd logs to the journal, not to /var/log/libvirt,
    so a check that read only the log files would say ok on every systemd host."""
    if not runner.has("journalctl"):
        return [], False
    argv = ["journalctl", "--no-pager", "-o", "short-iso", "--since", "-%dh" % max_age_hours]
    argv += ["SYSLOG_IDENTIFIER=%s" % name for name in identifiers]  # one field: the matches are ORed
    rc, text, err = runner.read(argv, check_rc=False)
    if rc != 0 or "No journal files were found" in (err or ""):
        return [], False
    hits = [{"file": "journal", "line": line.strip()[:300]} for line in text.splitlines()
            if not line.startswith("-- ") and any(p in line for p in patterns)]
    return hits, True


def default_route_dev(runner):
    routes = runner.read_json(["ip", "-4", "-j", "route", "show", "default"]) or []
    return routes[0].get("dev") if routes else None


def sysctls():
    return {IPV4_FORWARD: read_value(IPV4_FORWARD), IPV6_FORWARD: read_value(IPV6_FORWARD)}


def _proc_address(hex_addr, version):
    """/proc/net prints each 32-bit word of the address in host byte order."""
    raw = bytes.fromhex(hex_addr)
    words = [struct.pack("=I", struct.unpack(">I", raw[i:i + 4])[0]) for i in range(0, len(raw), 4)]
    return socket.inet_ntop(socket.AF_INET if version == 4 else socket.AF_INET6, b"".join(words))


def parse_proc_net(text, proto, version):
    """Listening sockets of one /proc/net/{tcp,udp}[6] file: (address, port, inode)."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != LISTEN_STATES[proto]:
            continue
        hex_addr, hex_port = fields[1].split(":")
        address = _proc_address(hex_addr, version)
        if address.startswith("::ffff:") and "." in address:
            address = address[7:]
        found.append({"proto": proto, "address": address, "port": int(hex_port, 16), "inode": int(fields[9])})
    return found


def _socket_owners(inodes, proc="/proc"):
    """inode -> (pid, command name), by reading every process's fd links (exact, unlike ss -p)."""
    wanted = {"socket:[%d]" % inode: inode for inode in inodes}
    owners = {}
    for pid in (p for p in os.listdir(proc) if p.isdigit()):
        try:
            for fd in os.listdir(os.path.join(proc, pid, "fd")):
                target = os.readlink(os.path.join(proc, pid, "fd", fd))
                if target in wanted and wanted[target] not in owners:
                    with open(os.path.join(proc, pid, "comm"), "r", encoding="utf-8", errors="replace") as handle:
                        owners[wanted[target]] = (int(pid), handle.read().strip())
        except OSError:  # the process ended, or it is not ours to look at
            continue
        if len(owners) == len(wanted):
            break
    return owners


def listeners(proc="/proc"):
    found = []
    for proto in ("tcp", "udp"):
        for suffix, version in (("", 4), ("6", 6)):
            try:
                with open(os.path.join(proc, "net", proto + suffix), "r", encoding="ascii") as handle:
                    found += parse_proc_net(handle.read(), proto, version)
            except OSError:
                continue
    found = [item for item in found if item["port"] in PORTS_OF_INTEREST]
    owners = _socket_owners({item["inode"] for item in found}, proc)
    for item in found:
        item["pid"], item["process"] = owners.get(item.pop("inode"), (None, None))
    return sorted(found, key=lambda i: (i["port"], i["proto"], i["address"]))


def counters(names, root="/sys/class/net"):
    out = {}
    for name in names:
        values = {}
        for key in STAT_KEYS:
            try:
                with open(os.path.join(root, name, "statistics", key), "r", encoding="ascii") as handle:
                    values[key] = int(handle.read().strip())
            except (OSError, ValueError):
                values = None
                break
        if values is not None:
            out[name] = values
    return out


def netfilter(runner):
    """(chains, nat rules, port forwards, errors) from every rule owner, each read its own way.
    A reader that fails (not root, a broken binary) is an error to report, not a crash."""
    chains, owned, errors = {}, set(), []

    def read(argv):
        rc, text, err = runner.read(argv, check_rc=False)
        if rc != 0:
            errors.append("%s failed (rc=%s): %s" % (" ".join(argv), rc, (err or text).strip()[:200]))
            return None
        return text

    for binary, family in (("iptables-nft-save", "ip"), ("ip6tables-nft-save", "ip6")):
        text = read([binary]) if runner.has(binary) else None
        if text is not None:
            owned |= nf.save_tables(text, family)
            chains.update(nf.chains_from_save(text, family, "nft"))
    if runner.has("nft"):
        text = read(["nft", "-j", "list", "ruleset"])
        try:
            chains.update(nf.chains_from_nft(json.loads(text) if text and text.strip() else None, skip_tables=owned))
        except ValueError as exc:
            errors.append("nft -j list ruleset printed no valid JSON: %s" % exc)
    elif not runner.has("iptables-nft-save"):
        errors.append("neither nft nor iptables-nft-save is installed: the rules were not read")
    chains.update(nf.legacy_chains(nf.read_legacy(runner, read)))
    return chains, nf.nat_rules(chains), nf.port_forwards(chains), errors


def resolv(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            parsed = dns.parse_resolv_conf(handle.read())
    except OSError as exc:
        return {"path": path, "nameservers": [], "search": [], "error": str(exc)}
    parsed["path"] = path
    return parsed


def dns_probes(servers, names, timeout, budget):
    """Every (server, name) pair, in order, until ``budget`` seconds are used up."""
    probes = []
    deadline = time.monotonic() + budget
    for server in servers:
        for name in names:
            if time.monotonic() + timeout > deadline:
                probes.append({"server": server, "name": name, "rcode": "SKIPPED", "answers": 0, "ms": None})
                continue
            probes.append(dns.query(server, name, timeout=timeout))
    return probes


def large_probes(servers, name, timeout, budget):
    """Each nameserver asked for ``name`` over UDP with a 1232 and a 4096-byte payload, and over
    TCP, until ``budget`` seconds are used up (see checks_dns.check_edns_size)."""
    out = []
    deadline = time.monotonic() + budget
    for server in servers:
        if time.monotonic() + 3 * timeout > deadline:
            break
        out.append({"server": server,
                    "udp_small": dns.query_size(server, name, 1232, timeout=timeout),
                    "udp_large": dns.query_size(server, name, 4096, timeout=timeout),
                    "tcp": dns.query_size(server, name, 4096, timeout=timeout, tcp=True)})
    return out


def log_lines(paths, patterns, max_age_hours, now=None):
    """Lines of the libvirtd logs that carry a known message, at most ``max_age_hours`` old when
    the line starts with libvirt's timestamp (2024-05-01 10:00:00.123+0000: ...)."""
    now = time.time() if now is None else now
    hits, read = [], []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        read.append(path)
        for line in text.splitlines():
            if any(p in line for p in patterns) and _recent(line, now, max_age_hours):
                hits.append({"file": path, "line": line.strip()[:300]})
    return hits, read


def _recent(line, now, max_age_hours):
    try:
        stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) - time.timezone
    except ValueError:
        return True
    return now - stamp <= max_age_hours * 3600


def firewalld(runner, bridges):
    if not runner.has("firewall-cmd"):
        return {"running": False}
    rc, out, _err = runner.read(["firewall-cmd", "--state"], check_rc=False)
    if rc != 0 or out.strip() != "running":
        return {"running": False}
    zones = {}
    for bridge in bridges:
        rc, out, _err = runner.read(["firewall-cmd", "--get-zone-of-interface=%s" % bridge], check_rc=False)
        zones[bridge] = out.strip() if rc == 0 else None
    return {"running": True, "zones": zones}


def host_network(bridge, addrs):
    ips = []
    for cidr in addrs.get(bridge, []):
        address, prefix = cidr.split("/")
        ips.append({"address": address, "prefix": int(prefix), "dhcp_ranges": [], "dhcp_hosts": []})
    return {"name": bridge, "source": "host", "bridge": bridge, "active": True, "forward_mode": None,
            "domain": None, "mtu": None, "ips": ips, "leases": []}
