# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a check returns: findings with a status, the evidence seen, and the fix.

Facts are plain dicts and lists (JSON-shaped), so a check can be fed a fixture in a unit test
and the module can return the facts it saw next to the findings.
"""

from __future__ import annotations

import ipaddress

OK, WARN, FAIL = "ok", "warn", "fail"
ORDER = {FAIL: 0, WARN: 1, OK: 2}


def finding(check, status, subject, summary, evidence=None, fix=None, fix_module=None):
    """One finding. ``fix_module`` is {"module": FQCN, "args": {...}} when the collection can fix it."""
    return {
        "check": check,
        "status": status,
        "subject": subject,
        "summary": summary,
        "evidence": list(evidence or []),
        "fix": fix,
        "fix_module": fix_module,
    }


def module_fix(collection_module, **args):
    return {"module": "hypervisor.network.%s" % collection_module, "args": args}


def sort_findings(findings):
    """Problems first, then by check and subject, so reports read top-down."""
    return sorted(findings, key=lambda f: (ORDER[f["status"]], f["check"], f["subject"]))


def summary(findings):
    counts = {OK: 0, WARN: 0, FAIL: 0}
    for item in findings:
        counts[item["status"]] += 1
    counts["total"] = len(findings)
    return counts


def gateways(network, family=4):
    """(address, subnet) of each IP of ``network`` in ``family``."""
    out = []
    for ip in network.get("ips", []):
        iface = ipaddress.ip_interface("%s/%s" % (ip["address"], ip["prefix"]))
        if iface.version == family:
            out.append((str(iface.ip), str(iface.network)))
    return out


def is_nat(network):
    """A libvirt network says so; a bridge found on the host counts when its subnet is private
    (guests behind a private address reach nothing without source NAT), unless the host's default
    route leaves through it (then it bridges the guests onto the LAN)."""
    if network["source"] == "libvirt":
        return network.get("forward_mode") == "nat"
    if network.get("uplink"):
        return False
    return any(ipaddress.ip_network(subnet).is_private for _gw, subnet in gateways(network, 4))


def serves_dns(network):
    if network["source"] == "libvirt":
        return network.get("forward_mode") in ("nat", "route", "open", None) and network.get("dns_enabled", True) \
            and bool(network.get("ips"))
    return bool(gateways(network, 4)) and not network.get("uplink")


def serves_dhcp(network):
    if network["source"] == "libvirt":
        return any(ip.get("dhcp_ranges") or ip.get("dhcp_hosts") for ip in network.get("ips", []))
    return bool(gateways(network, 4)) and not network.get("uplink")
