# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The typed desired state of a libvirt network: validation of module options into dataclasses.

XML rendering and parsing live in _libvirt/network_xml.py; both sides of a comparison pass through
the same dataclasses, so normalisation (compressed addresses, lower-case MACs, sorted lists where
order means nothing) happens once, here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Optional, Tuple

from ansible_collections.hypervisor.network.plugins.module_utils import _validate
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

FORWARD_MODES = ("nat", "route", "open", "bridge", "isolated")
LEASE_UNITS = ("seconds", "minutes", "hours")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
# A dnsmasq option is one line "key" or "key=value" of a config file: anything that could end the
# line or start a comment would let a value inject further directives.
_DNSMASQ_OPTION = re.compile(r"^[a-z][a-z0-9-]*(=[^\x00-\x1f\x7f#]*)?\Z")


@dataclasses.dataclass(frozen=True)
class Forward:
    mode: str = "nat"
    dev: Optional[str] = None
    nat_address_start: Optional[str] = None
    nat_address_end: Optional[str] = None
    nat_port_start: Optional[int] = None
    nat_port_end: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class DhcpRange:
    start: str
    end: str
    lease_expiry: Optional[int] = None
    lease_unit: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DhcpHost:
    ip: str
    mac: Optional[str] = None
    name: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class IpConfig:
    address: str
    prefix: int
    dhcp_ranges: Tuple[DhcpRange, ...] = ()
    dhcp_hosts: Tuple[DhcpHost, ...] = ()

    def __post_init__(self):
        _keep_sorted(self, "dhcp_ranges", "dhcp_hosts")

    @property
    def family(self):
        return "ipv6" if ":" in self.address else "ipv4"

    @property
    def subnet(self):
        return ipaddress.ip_interface("%s/%d" % (self.address, self.prefix)).network


@dataclasses.dataclass(frozen=True)
class DnsForwarder:
    addr: Optional[str] = None
    domain: Optional[str] = None
    port: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class DnsHost:
    ip: str
    hostnames: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DnsSrv:
    service: str
    protocol: str
    domain: Optional[str] = None
    target: Optional[str] = None
    port: Optional[int] = None
    priority: Optional[int] = None
    weight: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class DnsTxt:
    name: str
    value: str


@dataclasses.dataclass(frozen=True)
class Dns:
    enable: Optional[bool] = None
    forward_plain_names: Optional[bool] = None
    # None (only from module options: the list was not given) means "keep what the network has"
    forwarders: Optional[Tuple[DnsForwarder, ...]] = ()  # order kept: dnsmasq asks them in this order
    hosts: Optional[Tuple[DnsHost, ...]] = ()
    srvs: Optional[Tuple[DnsSrv, ...]] = ()
    txts: Optional[Tuple[DnsTxt, ...]] = ()

    def __post_init__(self):
        _keep_sorted(self, "hosts", "srvs", "txts")


@dataclasses.dataclass(frozen=True)
class Network:
    """One libvirt network. ``None`` means "not said": the planner keeps what the host has."""

    name: str
    uuid: Optional[str] = None
    forward: Optional[Forward] = None
    bridge: Optional[str] = None
    stp: Optional[bool] = None
    delay: Optional[int] = None
    mtu: Optional[int] = None
    mac: Optional[str] = None
    domain: Optional[str] = None
    domain_local_only: Optional[bool] = None
    ips: Optional[Tuple[IpConfig, ...]] = None
    dns: Optional[Dns] = None
    dnsmasq_options: Optional[Tuple[str, ...]] = None

    def to_dict(self):
        return dataclasses.asdict(self)


def _sort_key(item):
    return tuple("" if v is None else str(v) for v in dataclasses.astuple(item))


def _keep_sorted(instance, *fields):
    """Lists whose order means nothing to libvirt or dnsmasq are kept sorted, however the
    instance was made (module options, libvirt's XML, a planner's replace()), so two
    definitions that differ only in order compare equal."""
    for name in fields:
        if getattr(instance, name) is not None:
            object.__setattr__(instance, name, tuple(sorted(getattr(instance, name), key=_sort_key)))


# -- validation of module options ------------------------------------------------------------
def _addr(field, value, subnet=None):
    parsed = _validate.address(field, value)
    if subnet is not None and (parsed.version != subnet.version or parsed not in subnet):
        raise ValidationError(field, value, "not inside the network's subnet %s" % subnet)
    return parsed.compressed


def mac_address(field, value):
    text = str(value).strip().lower().replace("-", ":")
    if not _MAC.match(text):
        raise ValidationError(field, value, "a MAC address is six hex pairs such as 52:54:00:12:34:56")
    if int(text[:2], 16) & 1:  # the group bit: no NIC or bridge has such an address
        raise ValidationError(field, value, "a multicast MAC address (odd first byte) cannot belong to a NIC or bridge")
    return text


def dnsmasq_option(field, value):
    text = str(value).strip()
    if not _DNSMASQ_OPTION.match(text):
        raise ValidationError(
            field, value, "a dnsmasq option is one line 'name' or 'name=value' without control characters or '#'"
        )
    return text


def _int_in(field, value, low, high):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(field, value, "must be a whole number from %d to %d" % (low, high))
    return value


def _forward(opts):
    mode = opts.get("mode") or "nat"
    if mode not in FORWARD_MODES:
        raise ValidationError("forward.mode", mode, "must be one of %s" % ", ".join(FORWARD_MODES))
    dev = opts.get("dev")
    if dev is not None:
        _validate.interface_name("forward.dev", dev)
    nat = {}
    for key in ("nat_address_start", "nat_address_end", "nat_port_start", "nat_port_end"):
        if opts.get(key) is not None and mode != "nat":
            raise ValidationError("forward.%s" % key, opts[key], "only forward mode nat has NAT ranges")
    addresses = (opts.get("nat_address_start"), opts.get("nat_address_end"))
    if any(a is not None for a in addresses):
        start = _validate.address("forward.nat_address_start", addresses[0] or addresses[1])
        end = _validate.address("forward.nat_address_end", addresses[1] or addresses[0])
        if start.version != 4 or end.version != 4 or int(start) > int(end):
            raise ValidationError("forward.nat_address_end", str(end), "NAT addresses are an IPv4 range, start <= end")
        nat.update(nat_address_start=start.compressed, nat_address_end=end.compressed)
    ports = (opts.get("nat_port_start"), opts.get("nat_port_end"))
    if any(p is not None for p in ports):
        # Port 0 is no source port: refused rather than guessed (it used to become the other bound).
        low = _int_in("forward.nat_port_start", ports[0] if ports[0] is not None else ports[1], 1, 65535)
        high = _int_in("forward.nat_port_end", ports[1] if ports[1] is not None else ports[0], 1, 65535)
        if low > high:
            raise ValidationError("forward.nat_port_end", high, "the NAT port range is reversed (start %d after end)" % low)
        nat.update(nat_port_start=low, nat_port_end=high)
    if mode == "bridge" and dev is not None:
        raise ValidationError("forward.dev", dev, "forward mode bridge takes the host bridge in bridge.name, not forward.dev")
    return Forward(mode=mode, dev=dev, **nat)


def _reserved(subnet, gateway):
    """Addresses dnsmasq must never hand out: the network's own, the IPv4 broadcast, the gateway."""
    reserved = {subnet.network_address: "the network address", gateway: "the gateway (ips[].address)"}
    if subnet.version == 4 and subnet.num_addresses > 2:
        reserved[subnet.broadcast_address] = "the broadcast address"
    return reserved


def _dhcp_range(field, opts, subnet, gateway):
    start = ipaddress.ip_address(_addr(field + ".start", opts["start"], subnet))
    end = ipaddress.ip_address(_addr(field + ".end", opts["end"], subnet))
    if int(start) > int(end):
        raise ValidationError(field, "%s-%s" % (start, end), "the range is reversed (start after end)")
    for address, what in sorted(_reserved(subnet, gateway).items()):
        if start <= address <= end:
            raise ValidationError(field, "%s-%s" % (start, end), "the range includes %s %s" % (what, address))
    unit = opts.get("lease_unit")
    expiry = _int_in(field + ".lease_expiry", opts.get("lease_expiry"), 0, 10**9)
    if unit is not None and unit not in LEASE_UNITS:
        raise ValidationError(field + ".lease_unit", unit, "must be one of %s" % ", ".join(LEASE_UNITS))
    if expiry is None:
        unit = None
    return DhcpRange(start.compressed, end.compressed, expiry, unit or ("minutes" if expiry is not None else None))


def _ip(index, opts):
    field = "ips[%d]" % index
    address = _validate.address(field + ".address", opts["address"])
    max_prefix = 32 if address.version == 4 else 128
    prefix = _int_in(field + ".prefix", opts.get("prefix") or (24 if address.version == 4 else 64), 1, max_prefix)
    subnet = ipaddress.ip_interface("%s/%d" % (address, prefix)).network
    if address in (subnet.network_address, subnet.broadcast_address) and subnet.num_addresses > 2:
        raise ValidationError(field + ".address", str(address), "is the network or broadcast address of %s" % subnet)
    ranges = [_dhcp_range("%s.dhcp_ranges[%d]" % (field, i), r, subnet, address) for i, r in enumerate(opts.get("dhcp_ranges") or [])]
    by_start = sorted(enumerate(ranges), key=lambda item: int(ipaddress.ip_address(item[1].start)))
    for (before_index, before), (index, item) in zip(by_start, by_start[1:]):
        if int(ipaddress.ip_address(item.start)) <= int(ipaddress.ip_address(before.end)):
            raise ValidationError(
                "%s.dhcp_ranges[%d]" % (field, index), "%s-%s" % (item.start, item.end),
                "overlaps dhcp_ranges[%d] %s-%s" % (before_index, before.start, before.end),
            )
    hosts, seen_mac, seen_ip, seen_name = [], {}, {}, {}
    for i, host in enumerate(opts.get("dhcp_hosts") or []):
        hfield = "%s.dhcp_hosts[%d]" % (field, i)
        ip = _addr(hfield + ".ip", host["ip"], subnet)
        reserved = _reserved(subnet, address).get(ipaddress.ip_address(ip))
        if reserved:
            raise ValidationError(hfield + ".ip", ip, "is %s of %s" % (reserved, subnet))
        mac = mac_address(hfield + ".mac", host["mac"]) if host.get("mac") else None
        name = _validate.dns_name(hfield + ".name", host["name"]) if host.get("name") else None
        if address.version == 4 and mac is None:
            raise ValidationError(hfield + ".mac", None, "an IPv4 DHCP host needs its MAC address")
        if address.version == 6 and mac is not None:
            raise ValidationError(hfield + ".mac", mac, "libvirt matches IPv6 DHCP hosts by name, not by MAC")
        if address.version == 6 and name is None:
            raise ValidationError(hfield + ".name", None, "an IPv6 DHCP host needs a name")
        for key, seen, label in ((mac, seen_mac, "MAC"), (ip, seen_ip, "IP"), (name, seen_name, "name")):
            if key is not None and key in seen:
                raise ValidationError(hfield + "." + label.lower(), key, "duplicate %s, already used by dhcp_hosts[%d]" % (label, seen[key]))
            if key is not None:
                seen[key] = i
        hosts.append(DhcpHost(ip=ip, mac=mac, name=name))
    return IpConfig(
        address=address.compressed,
        prefix=prefix,
        dhcp_ranges=tuple(ranges),
        dhcp_hosts=tuple(hosts),
    )


def _dns(opts):
    forwarders = []
    for i, fwd in enumerate(opts.get("forwarders") or []):
        field = "dns.forwarders[%d]" % i
        if not fwd.get("addr") and not fwd.get("domain"):
            raise ValidationError(field, fwd, "a forwarder needs addr, domain, or both")
        forwarders.append(
            DnsForwarder(
                addr=_addr(field + ".addr", fwd["addr"]) if fwd.get("addr") else None,
                domain=_validate.dns_name(field + ".domain", fwd["domain"]) if fwd.get("domain") else None,
                port=_int_in(field + ".port", fwd.get("port"), 1, 65535),
            )
        )
        if forwarders[-1].port is not None and forwarders[-1].addr is None:
            raise ValidationError(field + ".port", fwd.get("port"), "a port needs an addr")
    hosts = []
    for i, host in enumerate(opts.get("hosts") or []):
        field = "dns.hosts[%d]" % i
        names = tuple(sorted(_validate.dns_name("%s.hostnames[%d]" % (field, j), n) for j, n in enumerate(host.get("hostnames") or [])))
        if not names:
            raise ValidationError(field + ".hostnames", host.get("hostnames"), "a DNS host needs at least one host name")
        hosts.append(DnsHost(ip=_addr(field + ".ip", host["ip"]), hostnames=names))
    srvs = []
    for i, srv in enumerate(opts.get("srv") or []):
        field = "dns.srv[%d]" % i
        protocol = srv.get("protocol") or "tcp"
        if protocol not in ("tcp", "udp"):
            raise ValidationError(field + ".protocol", protocol, "must be tcp or udp")
        srvs.append(
            DnsSrv(
                service=_validate.dns_name(field + ".service", srv["service"]),
                protocol=protocol,
                domain=_validate.dns_name(field + ".domain", srv["domain"]) if srv.get("domain") else None,
                target=_validate.dns_name(field + ".target", srv["target"]) if srv.get("target") else None,
                port=_int_in(field + ".port", srv.get("port"), 1, 65535),
                priority=_int_in(field + ".priority", srv.get("priority"), 0, 65535),
                weight=_int_in(field + ".weight", srv.get("weight"), 0, 65535),
            )
        )
    txts = []
    for i, txt in enumerate(opts.get("txt") or []):
        field = "dns.txt[%d]" % i
        value = str(txt["value"])
        if not value.isprintable() or '"' in value:
            raise ValidationError(field + ".value", value, "a TXT value cannot contain control characters or double quotes")
        txts.append(DnsTxt(name=_validate.dns_name(field + ".name", txt["name"]), value=value))
    # A list not given keeps what the network has (the planner fills it in); with DNS switched off
    # libvirt allows none of them, so then they are all empty.
    given = {key: opts.get(key) is not None or opts.get("enable") is False for key in ("forwarders", "hosts", "srv", "txt")}
    return Dns(
        enable=opts.get("enable"),
        forward_plain_names=opts.get("forward_plain_names"),
        forwarders=tuple(forwarders) if given["forwarders"] else None,
        hosts=tuple(hosts) if given["hosts"] else None,
        srvs=tuple(srvs) if given["srv"] else None,
        txts=tuple(txts) if given["txt"] else None,
    )


def network_from_params(params):
    """Validate the module options of libvirt_network into a Network; raise ValidationError."""
    name = params["name"]
    if not name or "/" in name or not name.isprintable() or name != name.strip():
        raise ValidationError("name", name, "a network name is printable text without '/' or surrounding spaces")
    forward = _forward(params["forward"]) if params.get("forward") is not None else None
    bridge = params.get("bridge") or {}
    if bridge.get("name") is not None:
        _validate.interface_name("bridge.name", bridge["name"])
    bridged = forward is not None and forward.mode == "bridge"
    if bridged and not bridge.get("name"):
        raise ValidationError("bridge.name", None, "forward mode bridge needs the name of an existing host bridge")
    ips = None
    if params.get("ips") is not None:
        ips = tuple(_ip(i, ip) for i, ip in enumerate(params["ips"]))
        if bridged and ips:
            raise ValidationError("ips", params["ips"], "a network in forward mode bridge has no addresses of its own")
        for family in ("ipv4", "ipv6"):
            if len([ip for ip in ips if ip.family == family and (ip.dhcp_ranges or ip.dhcp_hosts)]) > 1:
                raise ValidationError("ips", params["ips"], "libvirt serves DHCP on one %s address only" % family)
    options = params.get("dnsmasq_options")
    domain = params.get("domain")
    return Network(
        name=name,
        forward=forward,
        bridge=bridge.get("name"),
        stp=bridge.get("stp"),
        delay=_int_in("bridge.delay", bridge.get("delay"), 0, 1000),
        mtu=_int_in("mtu", params.get("mtu"), 68, 65535),
        mac=mac_address("mac", params["mac"]) if params.get("mac") else None,
        domain=_validate.dns_name("domain", domain) if domain else None,
        domain_local_only=params.get("domain_local_only"),
        ips=ips,
        dns=_dns(params["dns"]) if params.get("dns") is not None else None,
        dnsmasq_options=None if options is None else tuple(dnsmasq_option("dnsmasq_options[%d]" % i, o) for i, o in enumerate(options)),
    )
