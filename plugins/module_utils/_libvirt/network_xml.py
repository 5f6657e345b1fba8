# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure rendering of a Network to libvirt network XML and parsing back, with xml.etree.

parse(render(n)) == n for every normalised Network, and render(parse(x)) is the normalised form of
whatever libvirt printed: that is what the planner compares and what --diff shows.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_model import (
    DhcpHost,
    DhcpRange,
    Dns,
    DnsForwarder,
    DnsHost,
    DnsSrv,
    DnsTxt,
    Forward,
    IpConfig,
    Network,
)

DNSMASQ_NS = "http://libvirt.org/schemas/network/dnsmasq/1.0"
ET.register_namespace("dnsmasq", DNSMASQ_NS)
NAT_DEFAULT_PORTS = (1024, 65535)


def yes_no(value):
    return None if value is None else ("yes" if value else "no")


def _bool(text):
    return None if text is None else text in ("yes", "on")


def _int(text):
    return None if text in (None, "") else int(text)


def _set(element, **attrs):
    for key, value in attrs.items():
        if value is not None:
            element.set(key.rstrip("_"), str(value))
    return element


# -- elements that virNetworkUpdate takes on their own -----------------------------------------
def dhcp_range_element(item: DhcpRange):
    element = _set(ET.Element("range"), start=item.start, end=item.end)
    if item.lease_expiry is not None:
        _set(ET.SubElement(element, "lease"), expiry=item.lease_expiry, unit=item.lease_unit)
    return element


def dhcp_host_element(item: DhcpHost):
    return _set(ET.Element("host"), mac=item.mac, name=item.name, ip=item.ip)


def dns_host_element(item: DnsHost):
    element = _set(ET.Element("host"), ip=item.ip)
    for name in item.hostnames:
        ET.SubElement(element, "hostname").text = name
    return element


def forwarder_element(item: DnsForwarder):
    return _set(ET.Element("forwarder"), domain=item.domain, addr=item.addr, port=item.port)


def dnsmasq_option_element(value):
    return _set(ET.Element("{%s}option" % DNSMASQ_NS), value=value)


def dns_txt_element(item: DnsTxt):
    return _set(ET.Element("txt"), name=item.name, value=item.value)


def dns_srv_element(item: DnsSrv):
    return _set(
        ET.Element("srv"),
        service=item.service,
        protocol=item.protocol,
        domain=item.domain,
        target=item.target,
        port=item.port,
        priority=item.priority,
        weight=item.weight,
    )


def to_text(element, pretty=False):
    if pretty and hasattr(ET, "indent"):
        ET.indent(element, space="  ")
    return ET.tostring(element, encoding="unicode")


# -- the whole network -------------------------------------------------------------------------
def render(net: Network, pretty=True):
    root = ET.Element("network")
    ET.SubElement(root, "name").text = net.name
    if net.uuid:
        ET.SubElement(root, "uuid").text = net.uuid
    forward = net.forward
    if forward is not None and forward.mode != "isolated":
        fwd = _set(ET.SubElement(root, "forward"), mode=forward.mode, dev=forward.dev)
        if forward.nat_address_start or forward.nat_port_start:
            nat = ET.SubElement(fwd, "nat")
            if forward.nat_address_start:
                _set(ET.SubElement(nat, "address"), start=forward.nat_address_start, end=forward.nat_address_end)
            if forward.nat_port_start:
                _set(ET.SubElement(nat, "port"), start=forward.nat_port_start, end=forward.nat_port_end)
    if net.bridge or net.stp is not None or net.delay is not None:
        _set(ET.SubElement(root, "bridge"), name=net.bridge, stp=None if net.stp is None else ("on" if net.stp else "off"), delay=net.delay)
    if net.mtu is not None:
        _set(ET.SubElement(root, "mtu"), size=net.mtu)
    if net.mac:
        _set(ET.SubElement(root, "mac"), address=net.mac)
    if net.domain:
        _set(ET.SubElement(root, "domain"), name=net.domain, localOnly=yes_no(net.domain_local_only))
    dns = net.dns
    if dns is not None and dns != Dns():
        element = _set(ET.SubElement(root, "dns"), enable=yes_no(dns.enable), forwardPlainNames=yes_no(dns.forward_plain_names))
        element.extend(forwarder_element(f) for f in dns.forwarders)
        element.extend(dns_txt_element(t) for t in dns.txts)
        element.extend(dns_host_element(h) for h in dns.hosts)
        element.extend(dns_srv_element(s) for s in dns.srvs)
    for ip in net.ips or ():
        element = _set(ET.SubElement(root, "ip"), family="ipv6" if ip.family == "ipv6" else None, address=ip.address, prefix=ip.prefix)
        if ip.dhcp_ranges or ip.dhcp_hosts:
            dhcp = ET.SubElement(element, "dhcp")
            dhcp.extend(dhcp_range_element(r) for r in ip.dhcp_ranges)
            dhcp.extend(dhcp_host_element(h) for h in ip.dhcp_hosts)
    if net.dnsmasq_options:
        options = ET.SubElement(root, "{%s}options" % DNSMASQ_NS)
        options.extend(dnsmasq_option_element(o) for o in net.dnsmasq_options)
    return to_text(root, pretty=pretty)


def _parse_forward(root):
    element = root.find("forward")
    if element is None:
        return Forward(mode="isolated")
    mode = element.get("mode", "nat")
    nat_address, nat_port = element.find("nat/address"), element.find("nat/port")
    ports = (None, None)
    if nat_port is not None:
        ports = (_int(nat_port.get("start")), _int(nat_port.get("end")))
    elif mode == "nat":
        # libvirt's running XML spells out its default port range, the persistent one does not
        ports = NAT_DEFAULT_PORTS
    return Forward(
        mode=mode,
        dev=element.get("dev"),
        nat_address_start=nat_address.get("start") if nat_address is not None else None,
        nat_address_end=nat_address.get("end") if nat_address is not None else None,
        nat_port_start=ports[0],
        nat_port_end=ports[1],
    )


def parse_ip(element):
    address = ipaddress.ip_address(element.get("address"))
    if element.get("prefix"):
        prefix = int(element.get("prefix"))
    elif element.get("netmask"):
        prefix = ipaddress.ip_network("0.0.0.0/%s" % element.get("netmask")).prefixlen
    else:
        prefix = 24 if address.version == 4 else 64
    return IpConfig(
        address=address.compressed,
        prefix=prefix,
        dhcp_ranges=tuple(parse_dhcp_range(r) for r in element.findall("dhcp/range")),
        dhcp_hosts=tuple(parse_dhcp_host(h) for h in element.findall("dhcp/host")),
    )


def parse_dhcp_range(rng):
    lease = rng.find("lease")
    return DhcpRange(
        start=ipaddress.ip_address(rng.get("start")).compressed,
        end=ipaddress.ip_address(rng.get("end")).compressed,
        lease_expiry=_int(lease.get("expiry")) if lease is not None else None,
        lease_unit=(lease.get("unit") or "minutes") if lease is not None else None,
    )


def parse_dhcp_host(host):
    mac = host.get("mac")
    return DhcpHost(ip=ipaddress.ip_address(host.get("ip")).compressed, mac=mac.lower() if mac else None, name=host.get("name"))


def _parse_dns(root):
    element = root.find("dns")
    if element is None:
        return Dns()
    return Dns(
        enable=_bool(element.get("enable")),
        forward_plain_names=_bool(element.get("forwardPlainNames")),
        forwarders=tuple(parse_forwarder(f) for f in element.findall("forwarder")),
        hosts=tuple(parse_dns_host(h) for h in element.findall("host")),
        srvs=tuple(parse_dns_srv(s) for s in element.findall("srv")),
        txts=tuple(parse_dns_txt(t) for t in element.findall("txt")),
    )


def parse_forwarder(element):
    return DnsForwarder(
        addr=ipaddress.ip_address(element.get("addr")).compressed if element.get("addr") else None,
        domain=element.get("domain"),
        port=_int(element.get("port")),
    )


def parse_dns_host(element):
    return DnsHost(ip=ipaddress.ip_address(element.get("ip")).compressed, hostnames=tuple(sorted(n.text for n in element.findall("hostname"))))


def parse_dns_srv(element):
    return DnsSrv(
        service=element.get("service"),
        protocol=element.get("protocol"),
        domain=element.get("domain"),
        target=element.get("target"),
        port=_int(element.get("port")),
        priority=_int(element.get("priority")),
        weight=_int(element.get("weight")),
    )


def parse_dns_txt(element):
    return DnsTxt(name=element.get("name"), value=element.get("value"))


def parse(text):
    """Parse libvirt's network XML into a Network (raises HypervisorNetworkError if unreadable)."""
    try:
        root = ET.fromstring(text)
        bridge = root.find("bridge")
        mtu, mac, domain = root.find("mtu"), root.find("mac"), root.find("domain")
        stp = bridge.get("stp") if bridge is not None else None
        return Network(
            name=root.findtext("name"),
            uuid=root.findtext("uuid"),
            forward=_parse_forward(root),
            bridge=bridge.get("name") if bridge is not None else None,
            stp=None if stp is None else stp == "on",
            delay=_int(bridge.get("delay")) if bridge is not None else None,
            mtu=_int(mtu.get("size")) if mtu is not None else None,
            mac=mac.get("address").lower() if mac is not None else None,
            domain=domain.get("name") if domain is not None else None,
            domain_local_only=_bool(domain.get("localOnly")) if domain is not None else None,
            ips=tuple(parse_ip(e) for e in root.findall("ip")),
            dns=_parse_dns(root),
            dnsmasq_options=tuple(o.get("value") for o in root.findall("{%s}options/{%s}option" % (DNSMASQ_NS, DNSMASQ_NS))),
        )
    except (ET.ParseError, ValueError, TypeError, AttributeError) as exc:
        raise HypervisorNetworkError("cannot read the network XML libvirt returned: %s" % exc, xml=text)
