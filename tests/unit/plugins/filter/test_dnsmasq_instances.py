# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dnsmasq_instances filter (bridge_host's dnsmasq check) from fixtures; the role runs it in
tests/integration/test_bridge_host_role.py."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hypervisor.network.plugins.filter.dnsmasq_instances import FilterModule, dnsmasq_instances

BRIDGES = [{"name": "br0", "addresses": ["10.30.0.1/24", "fd00:30::1/64"]}]
GOOD = {
    "bridge": "br0", "domain": "lab.internal", "no_hosts": True, "no_resolv": False, "router": "10.30.0.1",
    "dhcp_ranges": [{"start": "10.30.0.100", "end": "10.30.0.149", "lease_time": "12h"},
                    {"start": "10.30.0.150", "end": "10.30.0.199"}],
    "dhcp_hosts": [{"mac": "52:54:00:00:00:0a", "ip": "10.30.0.10", "name": "web"},
                   {"mac": "52:54:00:00:00:0b", "ip": "10.30.0.11"}],
    "servers": [{"domain": "corp.example", "addr": "198.51.100.53"}, {"addr": "203.0.113.53", "port": 5353},
                {"domain": "local.only"}],
    "dns_hosts": [{"ip": "10.30.0.5", "hostnames": ["files", "files.lab.internal"]}],
    "options": ["edns-packet-max=1232"],
}


def test_a_valid_list_comes_back_unchanged():
    items = [copy.deepcopy(GOOD)]
    assert dnsmasq_instances(items, BRIDGES) is items
    assert items == [GOOD]
    assert FilterModule().filters()["dnsmasq_instances"] is dnsmasq_instances


def test_the_item_address_stands_in_for_an_unmanaged_bridge():
    item = dict(copy.deepcopy(GOOD), bridge="brx", address="10.30.0.1/24")
    assert dnsmasq_instances([item], []) == [item]


def test_an_empty_list_is_fine():
    assert dnsmasq_instances([], []) == []


def change(path, value):
    item = copy.deepcopy(GOOD)
    target = item
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return item


@pytest.mark.parametrize("item, field, value", [
    (change(["dhcp_hosts", 0, "name"], "web,infinite"), "bridge_host_dnsmasq[0].dhcp_hosts[0].name", "web,infinite"),
    (change(["dhcp_hosts", 1, "ip"], "10.30.0.10"), "bridge_host_dnsmasq[0].dhcp_hosts[1].ip", "10.30.0.10"),
    (change(["dhcp_hosts", 1, "mac"], "52:54:00:00:00:0A"), "bridge_host_dnsmasq[0].dhcp_hosts[1].mac",
     "52:54:00:00:00:0A"),
    (change(["dhcp_hosts", 1, "name"], "WEB"), "bridge_host_dnsmasq[0].dhcp_hosts[1].name", "WEB"),
    (change(["dhcp_hosts", 0, "mac"], "01:00:5e:00:00:01"), "bridge_host_dnsmasq[0].dhcp_hosts[0].mac",
     "01:00:5e:00:00:01"),
    (change(["dhcp_hosts", 0, "ip"], "10.30.0.255"), "bridge_host_dnsmasq[0].dhcp_hosts[0].ip", "10.30.0.255"),
    (change(["dhcp_hosts", 0, "ip"], "10.30.0.1"), "bridge_host_dnsmasq[0].dhcp_hosts[0].ip", "10.30.0.1"),
    (change(["servers", 0, "domain"], "corp/evil.com"), "bridge_host_dnsmasq[0].servers[0].domain", "corp/evil.com"),
    (change(["servers", 0, "addr"], "1.2.3.4,5"), "bridge_host_dnsmasq[0].servers[0].addr", "1.2.3.4,5"),
    (change(["servers", 1, "port"], 0), "bridge_host_dnsmasq[0].servers[1].port", "0"),
    (change(["servers", 1], {}), "bridge_host_dnsmasq[0].servers[1]", "{}"),
    (change(["domain"], "ex ample.lan"), "bridge_host_dnsmasq[0].domain", "ex ample.lan"),
    (change(["dhcp_ranges", 1, "start"], "10.30.0.140"), "bridge_host_dnsmasq[0].dhcp_ranges[1].start", "10.30.0.140"),
    (change(["dhcp_ranges", 0, "lease_time"], "1h\n"), "bridge_host_dnsmasq[0].dhcp_ranges[0].lease_time", "1h\\n"),
    (change(["router"], "10.31.0.1"), "bridge_host_dnsmasq[0].router", "10.31.0.1"),
    (change(["dns_hosts", 0, "hostnames"], []), "bridge_host_dnsmasq[0].dns_hosts[0].hostnames", "[]"),
    (change(["dns_hosts", 0, "ip"], "files"), "bridge_host_dnsmasq[0].dns_hosts[0].ip", "files"),
    (change(["options", 0], "log-queries\nconf-file=/etc/x"), "bridge_host_dnsmasq[0].options[0]", "log-queries\\n"),
    (change(["no_hosts"], "yes"), "bridge_host_dnsmasq[0].no_hosts", "yes"),
    (change(["bridge"], "br0,lo"), "bridge_host_dnsmasq[0].bridge", "br0,lo"),
    (change(["dhcp_range"], []), "bridge_host_dnsmasq[0]", "unknown key dhcp_range"),
])
def test_each_bad_field_is_named_with_its_value(item, field, value):
    with pytest.raises(AnsibleFilterError) as info:
        dnsmasq_instances([item], BRIDGES)
    message = str(info.value)
    assert message.startswith(field + ": "), message
    assert value in message


def test_two_instances_on_one_bridge_are_refused():
    with pytest.raises(AnsibleFilterError, match=r"bridge_host_dnsmasq\[1\]\.bridge: 'br0' is not valid: appears twice"):
        dnsmasq_instances([GOOD, GOOD], BRIDGES)


def test_a_bridge_address_without_prefix_is_refused():
    item = dict(copy.deepcopy(GOOD), address="10.30.0.1")
    with pytest.raises(AnsibleFilterError, match=r"bridge_host_dnsmasq\[0\]\.address: '10.30.0.1'"):
        dnsmasq_instances([item], BRIDGES)
