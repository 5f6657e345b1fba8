# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check of bridge_host's dnsmasq instances, as a filter so the role runs it on the controller
before any task touches the host.

Every field that reaches dnsmasq's configuration goes through the validators libvirt_network's
model uses too (_validate.py), instead of Jinja regexes: one meaning of "a DNS name" or "a MAC" in
the whole collection. A value that would add a field (a comma), a line (a newline), or smuggle a
domain into ``server=/domain/addr`` (a '/') is refused, naming the field and the value.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: dnsmasq_instances
short_description: Check the dnsmasq instances of the bridge_host role
version_added: 0.1.0
author:
  - hypervisor.network developers (@hypervisor-network)
description:
  - Validates every field of every item of C(bridge_host_dnsmasq) and returns the list unchanged, or
    fails naming the field and the value.
  - Host names and domains are DNS names; MAC addresses are unicast; DHCP ranges, fixed addresses and
    the router lie inside the bridge's subnet (from C(bridge_host_bridges) or the item's C(address)),
    ranges are not reversed, do not overlap and hold neither the network, broadcast nor bridge
    address; MACs, addresses and names of fixed leases are unique; extra options are single lines.
options:
  _input:
    description: The C(bridge_host_dnsmasq) list.
    type: list
    elements: dict
    required: true
  bridges:
    description: The C(bridge_host_bridges) list, whose C(addresses) give each bridge's subnets.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Check the dnsmasq instances before anything is changed
  ansible.builtin.assert:
    that: bridge_host_dnsmasq | hypervisor.network.dnsmasq_instances(bridge_host_bridges) is sequence
"""

RETURN = r"""
_value:
  description: The input list, unchanged, when every field is valid.
  type: list
  elements: dict
"""

import ipaddress

from ansible.errors import AnsibleFilterError

from ansible_collections.hypervisor.network.plugins.module_utils import _validate
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

VARIABLE = "bridge_host_dnsmasq"
ITEM_KEYS = ("bridge", "address", "domain", "dhcp_ranges", "dhcp_hosts", "servers", "no_resolv", "no_hosts",
             "router", "dns_hosts", "options")
RANGE_KEYS = ("start", "end", "lease_time")
HOST_KEYS = ("mac", "ip", "name")
SERVER_KEYS = ("domain", "addr", "port")
DNS_HOST_KEYS = ("ip", "hostnames")


def _dict(field, value, keys):
    if not isinstance(value, dict):
        raise ValidationError(field, value, "must be a dictionary")
    unknown = sorted(str(key) for key in value if key not in keys)
    if unknown:
        raise ValidationError(field, value, "unknown key %s (known: %s)" % (", ".join(unknown), ", ".join(keys)))
    return value


def _list(field, value):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(field, value, "must be a list")
    return value


def _bool(field, value):
    if value is not None and not isinstance(value, bool):
        raise ValidationError(field, value, "must be true or false")


def _host_address(field, value, subnets):
    """An address handed to a guest: inside a subnet of the bridge, not its network, broadcast or
    own address."""
    if not subnets:
        raise ValidationError(field, value, "the bridge's subnet is unknown: list the bridge with its addresses in "
                                            "bridge_host_bridges or give the instance's address (such as 10.20.0.1/24)")
    parsed = _validate.address(field, value)
    for iface in subnets:
        if parsed.version == iface.version and parsed in iface.network:
            net = iface.network
            if parsed == iface.ip:
                raise ValidationError(field, value, "it is the bridge's own address")
            if net.version == 4 and net.prefixlen < 31 and parsed in (net.network_address, net.broadcast_address):
                raise ValidationError(field, value, "it is the network or broadcast address of %s" % net)
            return parsed
    raise ValidationError(field, value, "not inside the bridge's subnet (%s)" % ", ".join(str(i) for i in subnets))


def _subnets(field, item, bridges):
    """The bridge's addresses with their prefixes: the item's own ``address``, else the addresses
    the role gives the bridge in bridge_host_bridges."""
    if item.get("address") is not None:
        texts = [item["address"]]
        names = ["%s.address" % field]
    else:
        texts = []
        for bridge in bridges or []:
            if isinstance(bridge, dict) and bridge.get("name") == item["bridge"]:
                texts = list(bridge.get("addresses") or [])
        names = ["bridge_host_bridges[name=%s].addresses" % item["bridge"]] * len(texts)
    subnets = []
    for name, text in zip(names, texts):
        try:
            subnets.append(ipaddress.ip_interface(str(text)))
        except ValueError:
            raise ValidationError(name, text, "not an address with a prefix such as 10.20.0.1/24")
        if "/" not in str(text):
            raise ValidationError(name, text, "the prefix is missing, such as 10.20.0.1/24")
    return subnets


def _unique(field, seen, key, value):
    if key in seen:
        raise ValidationError(field, value, "appears twice (also at %s)" % seen[key])
    seen[key] = field


def check_instance(field, item, bridges):
    """Validate one instance; raises ValidationError naming the first bad field."""
    _dict(field, item, ITEM_KEYS)
    if "bridge" not in item:
        raise ValidationError("%s.bridge" % field, None, "the bridge to serve is required")
    _validate.interface_name("%s.bridge" % field, item["bridge"])
    if any(ch in item["bridge"] for ch in ",#="):
        # Linux allows these in a name, but interface= takes a comma list and '#' starts a comment
        raise ValidationError("%s.bridge" % field, item["bridge"], "dnsmasq cannot take a bridge name with ',', '#' or '='")
    subnets = _subnets(field, item, bridges)
    if item.get("domain") is not None:
        _validate.dns_name("%s.domain" % field, item["domain"])
    for key in ("no_resolv", "no_hosts"):
        _bool("%s.%s" % (field, key), item.get(key))

    ranges = []
    for index, rng in enumerate(_list("%s.dhcp_ranges" % field, item.get("dhcp_ranges"))):
        where = "%s.dhcp_ranges[%d]" % (field, index)
        _dict(where, rng, RANGE_KEYS)
        if not subnets:
            raise ValidationError(where, rng, "the bridge's subnet is unknown: list the bridge with its addresses in "
                                              "bridge_host_bridges or give the instance's address (such as 10.20.0.1/24)")
        low, high, _iface = _validate.address_range(where, rng.get("start"), rng.get("end"), subnets)
        if rng.get("lease_time") is not None:
            _validate.lease_time("%s.lease_time" % where, rng["lease_time"])
        for other_where, other_low, other_high in ranges:
            if low.version == other_low.version and low <= other_high and other_low <= high:
                raise ValidationError("%s.start" % where, rng.get("start"), "the range overlaps %s (%s-%s)"
                                      % (other_where, other_low, other_high))
        ranges.append((where, low, high))

    seen = {}
    for index, host in enumerate(_list("%s.dhcp_hosts" % field, item.get("dhcp_hosts"))):
        where = "%s.dhcp_hosts[%d]" % (field, index)
        _dict(where, host, HOST_KEYS)
        mac = _validate.mac_address("%s.mac" % where, host.get("mac"))
        _unique("%s.mac" % where, seen, ("mac", mac), host.get("mac"))
        ip = _host_address("%s.ip" % where, host.get("ip"), subnets)
        _unique("%s.ip" % where, seen, ("ip", ip), host.get("ip"))
        if host.get("name") is not None:
            name = _validate.dns_name("%s.name" % where, host["name"]).lower()
            _unique("%s.name" % where, seen, ("name", name), host["name"])

    for index, server in enumerate(_list("%s.servers" % field, item.get("servers"))):
        where = "%s.servers[%d]" % (field, index)
        _dict(where, server, SERVER_KEYS)
        if server.get("domain") is None and server.get("addr") is None:
            raise ValidationError(where, server, "give addr, domain or both")
        if server.get("domain") is not None:
            _validate.dns_name("%s.domain" % where, server["domain"])
        if server.get("addr") is not None:
            _validate.address("%s.addr" % where, server["addr"])
        port = server.get("port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
            raise ValidationError("%s.port" % where, port, "a port is a whole number from 1 to 65535")

    if item.get("router") is not None:
        router = _validate.address("%s.router" % field, item["router"])
        if not any(router.version == i.version and router in i.network for i in subnets):
            raise ValidationError("%s.router" % field, item["router"], "not inside the bridge's subnet (%s)"
                                  % (", ".join(str(i) for i in subnets) or "none known"))

    for index, record in enumerate(_list("%s.dns_hosts" % field, item.get("dns_hosts"))):
        where = "%s.dns_hosts[%d]" % (field, index)
        _dict(where, record, DNS_HOST_KEYS)
        _validate.address("%s.ip" % where, record.get("ip"))
        names = _list("%s.hostnames" % where, record.get("hostnames"))
        if not names:
            raise ValidationError("%s.hostnames" % where, record.get("hostnames"), "at least one host name is needed")
        for number, name in enumerate(names):
            _validate.dns_name("%s.hostnames[%d]" % (where, number), name)

    for index, option in enumerate(_list("%s.options" % field, item.get("options"))):
        _validate.dnsmasq_option("%s.options[%d]" % (field, index), option)


def dnsmasq_instances(instances, bridges=None):
    """The filter: ``instances`` unchanged, or an error naming the field and the value."""
    try:
        seen = {}
        for index, item in enumerate(_list(VARIABLE, instances)):
            field = "%s[%d]" % (VARIABLE, index)
            check_instance(field, item, bridges)
            _unique("%s.bridge" % field, seen, item["bridge"], item["bridge"])
    except ValidationError as exc:
        raise AnsibleFilterError(exc.msg)
    return instances


class FilterModule:
    def filters(self):
        return {"dnsmasq_instances": dnsmasq_instances}
