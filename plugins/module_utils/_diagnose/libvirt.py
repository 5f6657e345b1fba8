# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt networks as diagnose facts: read through libvirt-python, never changed.

A missing libvirt-python or a daemon that does not answer is returned as a fact (and becomes a
finding), never raised: diagnosing a host whose libvirtd is down is one of the jobs.
"""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import conn as conn_mod
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import network_xml as netxml
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError


def network_facts(net, active, leases):
    """A parsed libvirt Network (see _libvirt/network_model.py) as a plain dict."""
    dns = net.dns
    ips = []
    for ip in net.ips or ():
        ips.append({
            "address": ip.address, "prefix": ip.prefix,
            "dhcp_ranges": [{"start": r.start, "end": r.end} for r in ip.dhcp_ranges],
            "dhcp_hosts": [{"mac": h.mac, "ip": h.ip, "name": h.name} for h in ip.dhcp_hosts],
        })
    return {
        "name": net.name, "source": "libvirt", "bridge": net.bridge, "active": active,
        "forward_mode": net.forward.mode if net.forward else None,
        "domain": net.domain, "mtu": net.mtu, "ips": ips,
        "dns_enabled": not (dns is not None and dns.enable is False),
        "forwarders": [{"domain": f.domain, "addr": f.addr} for f in (dns.forwarders if dns else ())],
        "dnsmasq_options": list(net.dnsmasq_options or ()),
        "leases": leases,
    }


def _leases(handle):
    """Current leases, for the report; libvirt that cannot list them is not a finding."""
    try:
        return [{"mac": (lease.get("mac") or "").lower(), "ip": lease.get("ipaddr"), "hostname": lease.get("hostname")}
                for lease in handle.DHCPLeases()]
    except Exception:
        return []


def _safe_name(handle):
    try:
        return handle.name()
    except Exception:
        return "?"


def gather(uri, wanted=None):
    """(info, networks): info says whether libvirt answered; networks are dicts."""
    info = {"uri": uri, "enabled": True, "reachable": False, "error": None, "count": 0}
    try:
        conn = conn_mod.connect(uri)
    except HypervisorNetworkError as exc:
        info["error"] = exc.msg
        return info, []
    networks = []
    info["errors"] = []
    try:
        handles = conn.listAllNetworks(0)
    except Exception as exc:  # libvirt.libvirtError: the daemon answered the connect, then failed
        info["error"] = str(exc)
        handles = None
    for handle in handles or ():
        try:
            name = handle.name()
            if wanted and name not in wanted:
                continue
            active = bool(handle.isActive())
            parsed = netxml.parse(handle.XMLDesc(0))
            networks.append(network_facts(parsed, active, _leases(handle) if active else []))
        except Exception as exc:  # one network libvirt cannot describe, or XML we do not know: say so, go on
            info["errors"].append("%s: %s" % (_safe_name(handle), exc))
    if handles is not None:
        info["reachable"] = True
        info["count"] = len(networks)
        found = {net["name"] for net in networks} | {e.split(":", 1)[0] for e in info["errors"]}
        info["missing"] = [name for name in wanted or () if name not in found]
    try:
        conn.close()
    except Exception:
        pass
    return info, networks
