# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bridge model: the desired state from module parameters, the host state from ``ip -j`` /
``bridge -j`` JSON, and the summary used for ``before`` / ``after``. Pure: no host access."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ansible_collections.hypervisor.network.plugins.module_utils import _validate
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

# The ifalias that marks a port as enslaved by this module for one bridge; it is how a later run
# knows which ports it may release when they leave the list.
PORT_MARK = "hypervisor.network:bridge="
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
# Links stacked on a lower link, which refuse an MTU above the lower link's (less their headers);
# max_mtu does not say so. vxlan's headroom is its outer IPv4 + UDP + VXLAN headers (IPv6: 70).
STACKED_HEADROOM = {"vlan": 0, "macvlan": 0, "macvtap": 0, "ipvlan": 0, "vxlan": 50}
# ageing_time in seconds: NetworkManager's range (the kernel takes more, networkd any time span)
AGEING_TIME_MAX = 1000000


@dataclass
class PortWant:
    name: str
    vlan_parent: str = None  # create NAME as an 802.1Q sub-interface of this link
    vlan_id: int = None
    vlans: dict = None  # vid -> (pvid, untagged); None: leave the port's VLAN table alone


@dataclass
class BridgeWant:
    name: str
    state: str = "present"
    ports: list = None  # list of PortWant; None: do not manage ports
    exclusive_ports: bool = False
    steal: bool = False
    stp: bool = None
    forward_delay: int = None  # seconds
    ageing_time: int = None  # seconds a learned MAC address stays in the forwarding database
    mtu: int = None
    mac: str = None
    addresses: list = None  # normalised CIDR strings; None: leave addresses alone
    vlan_filtering: bool = None
    default_pvid: int = None
    vlans: dict = None  # the bridge's own (self) VLAN table

    def port_names(self):
        return [port.name for port in self.ports or []]


@dataclass
class Link:
    name: str
    kind: str = None
    master: str = None
    mtu: int = None
    min_mtu: int = 0
    max_mtu: int = 0
    mac: str = None
    up: bool = False
    alias: str = None
    vlan_parent: str = None
    vlan_id: int = None
    lower: str = None  # the link a vlan, macvlan or vxlan sits on
    headroom: int = 0  # bytes its encapsulation takes from the lower link's MTU
    bridge: dict = field(default_factory=dict)  # stp, forward_delay (s), ageing_time (s), vlan_filtering, default_pvid
    addresses: list = field(default_factory=list)  # global-scope CIDRs as "ip/prefix"


@dataclass
class HostState:
    links: dict  # name -> Link
    vlans: dict  # name -> {vid: (pvid, untagged)}
    routes: list  # dicts from ip -j route, each with "family"

    def ports_of(self, bridge):
        return sorted(name for name, link in self.links.items() if link.master == bridge)


# -- desired state ------------------------------------------------------------------------------
def vlan_id(field_name, value):
    try:
        vid = int(str(value).strip())
    except ValueError:
        raise ValidationError(field_name, value, "a VLAN id is a number from 1 to 4094")
    if not 1 <= vid <= 4094:
        raise ValidationError(field_name, value, "a VLAN id is a number from 1 to 4094")
    return vid


def vlan_list(field_name, values):
    """Expand ``[10, "20-22"]`` to a set of VLAN ids, refusing ids outside 1-4094."""
    vids = set()
    for index, value in enumerate(values or []):
        name = "%s[%d]" % (field_name, index)
        text = str(value).strip()
        low, sep, high = text.partition("-")
        if sep:
            first, last = vlan_id(name, low), vlan_id(name, high)
            if first > last:
                raise ValidationError(name, value, "the range is reversed")
            vids.update(range(first, last + 1))
        else:
            vids.add(vlan_id(name, text))
    return vids


def vlan_table(field_name, spec):
    """A VLAN table {vid: (pvid, untagged)} from ``vlans``, ``pvid`` and ``untagged``; None when
    none of them is given (the table is then not managed)."""
    if spec.get("vlans") is None and spec.get("pvid") is None and spec.get("untagged") is None:
        return None
    tagged = vlan_list(field_name + ".vlans", spec.get("vlans"))
    pvid = vlan_id(field_name + ".pvid", spec["pvid"]) if spec.get("pvid") is not None else None
    if spec.get("untagged") is None:
        untagged = {pvid} if pvid else set()
    else:
        untagged = vlan_list(field_name + ".untagged", spec.get("untagged"))
    members = tagged | untagged | ({pvid} if pvid else set())
    return dict((vid, (vid == pvid, vid in untagged)) for vid in members)


def _address(field_name, value):
    try:
        iface = ipaddress.ip_interface(str(value))
    except ValueError:
        raise ValidationError(field_name, value, "not an address with prefix such as 10.0.0.1/24 or fd00::1/64")
    if "/" not in str(value):
        raise ValidationError(field_name, value, "give the prefix length too, such as 10.0.0.1/24")
    return str(iface)


def want_from_params(params):
    """Normalise and validate what can be checked without looking at the host."""
    name = _validate.interface_name("name", params["name"])
    want = BridgeWant(name=name, state=params.get("state") or "present")
    for key in ("exclusive_ports", "steal", "stp", "vlan_filtering"):
        if params.get(key) is not None:
            setattr(want, key, bool(params[key]))
    if params.get("forward_delay") is not None:
        if not 2 <= int(params["forward_delay"]) <= 30 and want.stp:
            raise ValidationError("forward_delay", params["forward_delay"], "with STP on it is 2-30 seconds")
        if not 0 <= int(params["forward_delay"]) <= 30:
            raise ValidationError("forward_delay", params["forward_delay"], "it is 0-30 seconds")
        want.forward_delay = int(params["forward_delay"])
    if params.get("ageing_time") is not None:
        if not 0 <= int(params["ageing_time"]) <= AGEING_TIME_MAX:
            raise ValidationError("ageing_time", params["ageing_time"], "it is 0-%d seconds" % AGEING_TIME_MAX)
        want.ageing_time = int(params["ageing_time"])
    if params.get("mtu") is not None:
        if not 68 <= int(params["mtu"]) <= 65535:
            raise ValidationError("mtu", params["mtu"], "an Ethernet bridge MTU is 68-65535")
        want.mtu = int(params["mtu"])
    if params.get("mac") is not None:
        mac = str(params["mac"]).lower().replace("-", ":")
        if not _MAC.match(mac) or int(mac[:2], 16) & 1:
            raise ValidationError("mac", params["mac"], "not a unicast MAC address such as 02:00:00:00:00:01")
        want.mac = mac
    if params.get("addresses") is not None:
        want.addresses = sorted(set(_address("addresses[%d]" % i, a) for i, a in enumerate(params["addresses"])))
    if params.get("default_pvid") is not None:
        want.default_pvid = 0 if int(params["default_pvid"]) == 0 else vlan_id("default_pvid", params["default_pvid"])
    want.vlans = vlan_table("bridge", params)
    if params.get("ports") is not None:
        want.ports = [_port_want(i, spec, name) for i, spec in enumerate(params["ports"])]
        seen = set()
        for index, port in enumerate(want.ports):
            if port.name in seen:
                raise ValidationError("ports[%d].name" % index, port.name, "the port is listed twice")
            seen.add(port.name)
    uses_vlans = want.vlans is not None or any(p.vlans is not None for p in want.ports or [])
    if uses_vlans and not want.vlan_filtering:
        raise ValidationError("vlan_filtering", want.vlan_filtering, "VLAN lists need vlan_filtering: true")
    return want


def _port_want(index, spec, bridge):
    prefix = "ports[%d]" % index
    port = PortWant(name=_validate.interface_name(prefix + ".name", spec.get("name")))
    if port.name == bridge:
        raise ValidationError(prefix + ".name", port.name, "a bridge cannot be its own port")
    if spec.get("vlan_parent"):
        port.vlan_parent = _validate.interface_name(prefix + ".vlan_parent", spec["vlan_parent"])
        vid = spec.get("vlan_id")
        if vid is None:
            suffix = port.name.rpartition(".")[2]
            if not suffix.isdigit():
                raise ValidationError(prefix + ".vlan_id", vid, "give vlan_id, or name the port PARENT.VID")
            vid = suffix
        port.vlan_id = vlan_id(prefix + ".vlan_id", vid)
    port.vlans = vlan_table(prefix, spec)
    return port


# -- host state from JSON -----------------------------------------------------------------------
def parse_host(links_json, addr_json, vlan_json, routes_json):
    """HostState from ``ip -j -d link show``, ``ip -j addr``, ``bridge -j vlan show`` and the
    routes of both families (each route dict tagged with "family": 4 or 6)."""
    links = {}
    for item in links_json or []:
        link = Link(
            name=item["ifname"],
            master=item.get("master"),
            mtu=item.get("mtu"),
            min_mtu=item.get("min_mtu", 0),
            max_mtu=item.get("max_mtu", 0),
            mac=item.get("address"),
            up="UP" in item.get("flags", []),
            alias=item.get("ifalias"),
        )
        info = item.get("linkinfo") or {}
        link.kind = info.get("info_kind")
        data = info.get("info_data") or {}
        if link.kind == "bridge":
            link.bridge = {
                "stp": bool(data.get("stp_state")),
                "forward_delay": int(round(data.get("forward_delay", 0) / 100.0)),
                "ageing_time": _ageing_time(data),
                "vlan_filtering": bool(data.get("vlan_filtering")),
                "default_pvid": data.get("vlan_default_pvid"),
            }
        elif link.kind == "vlan":
            link.vlan_parent, link.vlan_id = item.get("link"), data.get("id")
        if link.kind in STACKED_HEADROOM and item.get("link"):
            link.lower = item["link"]
            six = ":" in str(data.get("remote", "") or data.get("group", "") or data.get("remote6", ""))
            link.headroom = 70 if link.kind == "vxlan" and six else STACKED_HEADROOM[link.kind]
        links[link.name] = link
    for item in addr_json or []:
        link = links.get(item.get("ifname"))
        if link is None:
            continue
        for info in item.get("addr_info", []):
            if info.get("scope") == "global" and info.get("family") in ("inet", "inet6"):
                link.addresses.append(str(ipaddress.ip_interface("%s/%s" % (info["local"], info["prefixlen"]))))
    return HostState(links=links, vlans=parse_vlans(vlan_json), routes=list(routes_json or []))


def _ageing_time(data):
    """The configured ageing time in seconds (the kernel counts 1/100 s), or None when it cannot be
    read: during an STP topology change the kernel reports its short ageing (twice the forward
    delay) in its place; older iproute2 leaves it out."""
    if data.get("ageing_time") is None or data.get("topology_change"):
        return None
    return int(round(data["ageing_time"] / 100.0))


def parse_vlans(vlan_json):
    tables = {}
    for item in vlan_json or []:
        table = tables.setdefault(item["ifname"], {})
        for entry in item.get("vlans", []):
            flags = entry.get("flags", [])
            for vid in range(entry["vlan"], entry.get("vlanEnd", entry["vlan"]) + 1):
                table[vid] = ("PVID" in flags, "Egress Untagged" in flags)
    return tables


# -- summaries for before/after -----------------------------------------------------------------
def vlan_ranges(vids):
    """[1, 2, 3, 7] -> ["1-3", "7"]."""
    ranges, start, prev = [], None, None
    for vid in sorted(vids):
        if start is not None and vid == prev + 1:
            prev = vid
            continue
        if start is not None:
            ranges.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = vid
    if start is not None:
        ranges.append(str(start) if start == prev else "%d-%d" % (start, prev))
    return ranges


def describe_table(table):
    if not table:
        return {}
    pvid = [vid for vid, (is_pvid, _u) in table.items() if is_pvid]
    return {
        "vlans": vlan_ranges(table),
        "pvid": pvid[0] if pvid else None,
        "untagged": vlan_ranges(vid for vid, (_p, untagged) in table.items() if untagged),
    }


def summary(host, name):
    """The bridge as the result's ``before`` / ``after`` show it."""
    link = host.links.get(name)
    if link is None or link.kind != "bridge":
        return {"name": name, "present": False}
    ports = []
    for port in host.ports_of(name):
        entry = {"name": port}
        entry.update(describe_table(host.vlans.get(port)))
        ports.append(entry)
    result = {
        "name": name,
        "present": True,
        "mtu": link.mtu,
        "mac": link.mac,
        "addresses": sorted(link.addresses),
        "ports": ports,
    }
    result.update(link.bridge)
    if link.bridge.get("vlan_filtering"):
        result["bridge_vlans"] = describe_table(host.vlans.get(name))
    return result
