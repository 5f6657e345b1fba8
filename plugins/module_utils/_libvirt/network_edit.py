# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change an existing network definition in place, touching only what the module owns.

A libvirt network carries much that the model does not know: portgroups, virtualport, bandwidth,
routes, tftp and bootp, localPtr, ``<nat ipv6='yes'>``, whatever a newer libvirt adds. Rendering
the definition again from the model would drop all of it on the next redefine (and the restart
after it), so a redefine starts from the XML libvirt returned and changes only the parts whose
modelled value differs between ``old`` (the model parsed from that XML) and ``new``. Everything
else keeps its element, its attributes and its place.

An element that would have to go (an ``<ip>`` no longer wanted, ``<nat>`` when leaving NAT mode,
``<forward>`` for an isolated network) but carries something the module does not model is never
removed silently: the edit is refused and names what would be lost.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from typing import Mapping

from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import network_xml as netxml
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_model import Dns, Forward, Network

# libvirt's own order of the top-level elements; new ones are placed accordingly (libvirt reorders
# on its next dump anyway, this only keeps the diff readable).
ORDER = ("name", "uuid", "metadata", "forward", "bridge", "mtu", "mac", "domain", "dns", "ip")
OPTIONS_TAG = "{%s}options" % netxml.DNSMASQ_NS


@dataclasses.dataclass(frozen=True)
class Owned:
    """The attributes and children of one element that the model covers."""

    attrs: frozenset = frozenset()
    children: Mapping[str, "Owned"] = dataclasses.field(default_factory=dict)
    text: bool = False


def _owned(attrs=(), children=None, text=False):
    return Owned(frozenset(attrs), dict(children or {}), text)


NAT = _owned(children={"address": _owned(("start", "end")), "port": _owned(("start", "end"))})
# <interface dev=...> under <forward> is libvirt's mirror of forward's dev attribute in the modes
# the module knows; any other <interface> (a macvtap pool) is checked separately.
FORWARD = _owned(("mode", "dev"), {"nat": NAT, "interface": _owned(("dev",))})
DHCP = _owned(children={
    "range": _owned(("start", "end"), {"lease": _owned(("expiry", "unit"))}),
    "host": _owned(("mac", "name", "ip")),
})
IP = _owned(("address", "prefix", "netmask", "family"), {"dhcp": DHCP})


def describe(element):
    """``<tag a='1' b='2'>`` of one element, for messages."""
    tag = element.tag.replace("{%s}" % netxml.DNSMASQ_NS, "dnsmasq:")
    attrs = "".join(" %s='%s'" % item for item in element.attrib.items())
    return "<%s%s>" % (tag, attrs)


def foreign(element, owned: Owned):
    """The first part of ``element`` (an attribute, a child, text) that ``owned`` does not cover,
    described for a message, or None."""
    for attr, value in element.attrib.items():
        if attr not in owned.attrs:
            return "attribute %s='%s' of %s" % (attr, value, describe(element))
    if (element.text or "").strip() and not owned.text:
        return "the text of %s" % describe(element)
    for child in element:
        if child.tag not in owned.children:
            return "%s inside %s" % (describe(child), describe(element))
        found = foreign(child, owned.children[child.tag])
        if found:
            return found
    return None


class _Editor:
    def __init__(self, root, name):
        self.root = root
        self.name = name

    # -- helpers ------------------------------------------------------------------------------
    def refuse_loss(self, element, owned, why, found=None):
        found = found or foreign(element, owned)
        if found:
            raise HypervisorNetworkError(
                "network %s: %s would drop %s, which this module does not manage; change or remove "
                "that by hand first (virsh net-edit %s), then run the task again" % (self.name, why, found, self.name),
                element=found,
            )

    def place(self, element, parent=None):
        parent = self.root if parent is None else parent
        rank = ORDER.index(element.tag) if element.tag in ORDER else len(ORDER)
        for index, child in enumerate(parent):
            if child.tag in ORDER and ORDER.index(child.tag) > rank:
                parent.insert(index, element)
                return element
        parent.append(element)
        return element

    def child(self, tag, parent=None):
        parent = self.root if parent is None else parent
        found = parent.find(tag)
        return found if found is not None else self.place(ET.Element(tag), parent)

    @staticmethod
    def set_attr(element, key, value):
        if value is None:
            element.attrib.pop(key, None)
        else:
            element.set(key, str(value))

    @staticmethod
    def drop_if_empty(parent, element):
        if element is not None and len(element) == 0 and not element.attrib and not (element.text or "").strip():
            parent.remove(element)

    def attrs(self, tag, values):
        """Set (or, for None, remove) attributes of the one element ``tag`` of the network."""
        element = self.child(tag)
        for key, value in values.items():
            self.set_attr(element, key, value)
        self.drop_if_empty(self.root, element)

    @staticmethod
    def sync(parent, tag, items, parse_item, build, ordered):
        """Make the ``tag`` children of ``parent`` the elements of ``items``: an element whose
        parsed value is wanted stays as it is (attributes the model does not know included), the
        others go, new ones are added. ``ordered`` lists (forwarders, dnsmasq options) are put in
        the order of ``items``; the others keep their places and new ones come after them."""
        existing = parent.findall(tag)
        anchor = list(parent).index(existing[0]) if existing else len(parent)
        pool = [(parse_item(e), e) for e in existing]
        chosen = []
        for item in items:
            for index, (value, element) in enumerate(pool):
                if value == item:
                    chosen.append(element)
                    del pool[index]
                    break
            else:
                chosen.append(build(item))
        for _value, element in pool:
            parent.remove(element)
        kept = [e for e in chosen if any(e is x for x in existing)]
        if ordered:
            for element in kept:
                parent.remove(element)
            position = min(anchor, len(parent))
            for offset, element in enumerate(chosen):
                parent.insert(position + offset, element)
            return
        children = list(parent)
        position = max((children.index(e) + 1 for e in kept), default=min(anchor, len(parent)))
        for offset, element in enumerate(e for e in chosen if not any(e is x for x in kept)):
            parent.insert(position + offset, element)

    # -- the owned parts ----------------------------------------------------------------------
    def forward(self, old: Forward, new: Forward):
        old = old or Forward(mode="isolated")
        element = self.root.find("forward")
        if element is not None and old.mode != new.mode:
            mirror = element.get("dev")
            why = "changing forward mode %s to %s" % (old.mode, new.mode)
            for iface in element.findall("interface"):
                if iface.get("dev") != mirror:  # a pool of devices, not libvirt's copy of dev
                    self.refuse_loss(iface, None, why, found="%s inside %s" % (describe(iface), describe(element)))
            self.refuse_loss(element, FORWARD, why)
        if new.mode == "isolated":
            if element is not None:
                self.root.remove(element)
            return
        if element is None:
            element = self.place(ET.Element("forward"))
        element.set("mode", new.mode)
        if old.dev != new.dev:
            for iface in element.findall("interface"):
                if iface.get("dev") == element.get("dev"):
                    element.remove(iface)  # libvirt writes it again from dev
            self.set_attr(element, "dev", new.dev)
        nat = element.find("nat")
        if new.mode != "nat":
            if nat is not None:
                self.refuse_loss(nat, NAT, "leaving forward mode nat")
                element.remove(nat)
            return
        if (old.nat_address_start, old.nat_address_end) != (new.nat_address_start, new.nat_address_end):
            nat = self.child("nat", element)
            address = self.child("address", nat)
            self.set_attr(address, "start", new.nat_address_start)
            self.set_attr(address, "end", new.nat_address_end)
            self.drop_if_empty(nat, address)
        ports = (new.nat_port_start, new.nat_port_end)
        if (old.nat_port_start, old.nat_port_end) != ports:
            nat = self.child("nat", element)
            port = nat.find("port")
            if ports == netxml.NAT_DEFAULT_PORTS and port is None:
                pass  # libvirt's implicit default already
            elif ports[0] is None:
                if port is not None:
                    nat.remove(port)
            else:
                port = self.child("port", nat)
                port.set("start", str(ports[0]))
                port.set("end", str(ports[1]))
        self.drop_if_empty(element, element.find("nat"))

    def dns(self, old: Dns, new: Dns):
        element = self.child("dns")
        if old.enable != new.enable:
            self.set_attr(element, "enable", netxml.yes_no(new.enable))
        if old.forward_plain_names != new.forward_plain_names:
            self.set_attr(element, "forwardPlainNames", netxml.yes_no(new.forward_plain_names))
        for tag, attr, parse_item, build, ordered in (
            ("forwarder", "forwarders", netxml.parse_forwarder, netxml.forwarder_element, True),
            ("host", "hosts", netxml.parse_dns_host, netxml.dns_host_element, False),
            ("srv", "srvs", netxml.parse_dns_srv, netxml.dns_srv_element, False),
            ("txt", "txts", netxml.parse_dns_txt, netxml.dns_txt_element, False),
        ):
            if getattr(old, attr) != getattr(new, attr):
                self.sync(element, tag, getattr(new, attr), parse_item, build, ordered)
        self.drop_if_empty(self.root, element)

    def ips(self, new_ips):
        elements = self.root.findall("ip")
        anchor = list(self.root).index(elements[0]) if elements else None
        pool = [(netxml.parse_ip(e), e) for e in elements]
        wanted = {ip.address for ip in new_ips}
        chosen = []
        for ip in new_ips:
            match = next((p for p in pool if p[0].address == ip.address), None)
            if match is None:  # an address changed: edit the element of the same family in place
                match = next((p for p in pool if p[0].family == ip.family and p[0].address not in wanted), None)
            if match is None:
                have, element = None, ET.Element("ip", {"family": "ipv6"} if ip.family == "ipv6" else {})
            else:
                pool.remove(match)
                have, element = match
            self.ip(element, have, ip)
            chosen.append(element)
        for _have, element in pool:
            self.refuse_loss(element, IP, "removing the address %s from ips" % element.get("address"))
            self.root.remove(element)
        if self.root.findall("ip") != chosen:
            for element in self.root.findall("ip"):
                self.root.remove(element)
            if anchor is None:
                for element in chosen:
                    self.place(element)
            else:
                for offset, element in enumerate(chosen):
                    self.root.insert(min(anchor, len(self.root)) + offset, element)

    def ip(self, element, have, ip):
        if have is None or have.address != ip.address:
            element.set("address", ip.address)
        if have is None or have.prefix != ip.prefix:
            element.attrib.pop("netmask", None)
            element.set("prefix", str(ip.prefix))
        if have is not None and (have.dhcp_ranges, have.dhcp_hosts) == (ip.dhcp_ranges, ip.dhcp_hosts):
            return
        dhcp = self.child("dhcp", element)
        if have is None or have.dhcp_ranges != ip.dhcp_ranges:
            self.sync(dhcp, "range", ip.dhcp_ranges, netxml.parse_dhcp_range, netxml.dhcp_range_element, False)
        if have is None or have.dhcp_hosts != ip.dhcp_hosts:
            self.sync(dhcp, "host", ip.dhcp_hosts, netxml.parse_dhcp_host, netxml.dhcp_host_element, False)
        self.drop_if_empty(element, dhcp)

    def options(self, values):
        element = self.root.find(OPTIONS_TAG)
        if element is None:
            element = self.place(ET.Element(OPTIONS_TAG))
        self.sync(element, "{%s}option" % netxml.DNSMASQ_NS, values, lambda e: e.get("value"), netxml.dnsmasq_option_element, True)
        self.drop_if_empty(self.root, element)


def edit(text, old: Network, new: Network):
    """The network XML ``text`` (whose model is ``old``) changed to carry ``new``: only the parts
    whose modelled value differs are touched. Raises HypervisorNetworkError naming an element the
    change would have to remove together with something the module does not manage."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise HypervisorNetworkError("cannot read the network XML libvirt returned: %s" % exc, xml=text)
    editor = _Editor(root, new.name)
    if new.forward is not None and new.forward != old.forward:
        editor.forward(old.forward, new.forward)
    if (old.bridge, old.stp, old.delay) != (new.bridge, new.stp, new.delay):
        editor.attrs("bridge", dict(name=new.bridge, stp=None if new.stp is None else ("on" if new.stp else "off"), delay=new.delay))
    if old.mtu != new.mtu:
        editor.attrs("mtu", dict(size=new.mtu))
    if old.mac != new.mac:
        editor.attrs("mac", dict(address=new.mac))
    if (old.domain, old.domain_local_only) != (new.domain, new.domain_local_only):
        editor.attrs("domain", dict(name=new.domain, localOnly=netxml.yes_no(new.domain_local_only)))
    if new.dns is not None and new.dns != old.dns:
        editor.dns(old.dns or Dns(), new.dns)
    if new.ips is not None and new.ips != old.ips:
        editor.ips(new.ips)
    if new.dnsmasq_options is not None and new.dnsmasq_options != old.dnsmasq_options:
        editor.options(new.dnsmasq_options)
    return pretty(root)


def pretty(root):
    """One serialisation for both sides of a diff: libvirt's quotes differ from ElementTree's, and
    new elements come without indentation. Only whitespace between elements changes."""
    if isinstance(root, str):
        root = ET.fromstring(root)
    return netxml.to_text(root, pretty=True)
