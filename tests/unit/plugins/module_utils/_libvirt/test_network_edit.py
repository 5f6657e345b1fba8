# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The in-place edit of a network definition: what the module does not own survives a redefine.

The fixture is the `net-dumpxml --inactive` of a network that carries everything the model does not
cover (nat ipv6, a NAT port range, macTableManager, domain register, bandwidth, localPtr, tftp,
bootp, a route, a portgroup, virtualport) plus an element no libvirt knows yet.
"""

from __future__ import annotations

import copy
import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import network_xml as netxml
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_edit import edit
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_model import network_from_params
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_plan import effective, host_state, plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "libvirt"
KEEP_XML = (FIXTURES / "keep_inactive.xml").read_text()
OLD = netxml.parse(KEEP_XML)
OPTION = "{%s}option" % netxml.DNSMASQ_NS

# Every part of a network definition that the module owns, as (parent path, child tag or @attr).
OWNED = (
    ("forward", "@mode"), ("forward", "@dev"), ("forward", "interface"), ("forward/nat", "address"), ("forward/nat", "port"),
    ("bridge", "@name"), ("bridge", "@stp"), ("bridge", "@delay"), (".", "mtu"), (".", "mac"),
    ("domain", "@name"), ("domain", "@localOnly"), ("dns", "@enable"), ("dns", "@forwardPlainNames"),
    ("dns", "forwarder"), ("dns", "host"), ("dns", "txt"), ("dns", "srv"),
    ("ip", "@address"), ("ip", "@prefix"), ("ip", "@netmask"), ("ip", "@family"), ("ip/dhcp", "range"), ("ip/dhcp", "host"),
    ("{%s}options" % netxml.DNSMASQ_NS, OPTION),
)


def without(xml, parts=OWNED):
    """Canonical XML of ``xml`` minus ``parts``: equal for two definitions that differ only there."""
    root = ET.fromstring(xml)
    for parent_path, what in parts:
        for parent in [root] if parent_path == "." else root.findall(parent_path):
            if what.startswith("@"):
                parent.attrib.pop(what[1:], None)
            else:
                for child in parent.findall(what):
                    parent.remove(child)
    for parent in list(root.iter()):  # a container left empty by stripping counts as absent
        for child in list(parent):
            if child.tag in ("dhcp", "nat", "dns", "{%s}options" % netxml.DNSMASQ_NS) and len(child) == 0 and not child.attrib:
                parent.remove(child)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


def changed(**fields):
    return dataclasses.replace(OLD, **fields)


def test_fixture_parses_and_the_same_model_edits_nothing():
    after = edit(KEEP_XML, OLD, OLD)
    assert without(after, ()) == without(KEEP_XML, ())


def test_mtu_change_touches_only_the_mtu():
    after = edit(KEEP_XML, OLD, changed(mtu=9000))
    assert without(after, [(".", "mtu")]) == without(KEEP_XML, [(".", "mtu")])
    assert ET.fromstring(after).find("mtu").get("size") == "9000"
    assert netxml.parse(after) == changed(mtu=9000)


def test_forwarder_change_keeps_everything_else_and_the_order():
    forwarders = (netxml.DnsForwarder(addr="203.0.113.53"), OLD.dns.forwarders[0])
    new = changed(dns=dataclasses.replace(OLD.dns, forwarders=forwarders))
    after = edit(KEEP_XML, OLD, new)
    assert without(after, [("dns", "forwarder")]) == without(KEEP_XML, [("dns", "forwarder")])
    assert [f.get("addr") for f in ET.fromstring(after).findall("dns/forwarder")] == ["203.0.113.53", "198.51.100.53"]
    assert netxml.parse(after) == new


def every_owned_change():
    """Options that change every owned part of the fixture at once."""
    return network_from_params(dict(
        name="keep",
        forward=dict(mode="nat", dev="wan0", nat_address_start="198.51.100.7", nat_address_end="198.51.100.9",
                     nat_port_start=30000, nat_port_end=39999),
        bridge=dict(name="virbr62", stp=False, delay=2), mtu=9000, mac="52:54:00:61:00:02",
        domain="other.internal", domain_local_only=False,
        ips=[dict(address="10.61.0.1", prefix=23,
                  dhcp_ranges=[dict(start="10.61.0.160", end="10.61.0.170")],
                  dhcp_hosts=[dict(mac="52:54:00:61:00:11", name="db", ip="10.61.0.11")]),
             dict(address="fd00:61::1", prefix=64, dhcp_ranges=[dict(start="fd00:61::100", end="fd00:61::1ff")])],
        dns=dict(enable=True, forward_plain_names=True, forwarders=[dict(addr="203.0.113.53")],
                 hosts=[dict(ip="10.61.0.6", hostnames=["nas"])], txt=[dict(name="v", value="2")],
                 srv=[dict(service="ldap", port=389, target="dc.other.internal")]),
        dnsmasq_options=["log-queries", "edns-packet-max=1232"],
    ))


def test_every_owned_part_changes_and_nothing_else_does():
    new = effective(every_owned_change(), OLD)
    after = edit(KEEP_XML, OLD, new)
    assert netxml.parse(after) == new
    assert without(after) == without(KEEP_XML)
    root = ET.fromstring(after)
    # spelled out, the parts the old renderer dropped
    assert root.find("forward/nat").get("ipv6") == "yes"
    assert [i.get("dev") for i in root.findall("forward/interface")] == []  # libvirt writes it again from dev
    assert root.find("bridge").get("macTableManager") == "libvirt" and root.find("domain").get("register") == "yes"
    assert root.find("ip").get("localPtr") == "yes" and root.find("ip/tftp").get("root") == "/srv/tftp"
    assert root.find("ip/dhcp/bootp").get("file") == "pxelinux.0"
    for tag in ("bandwidth", "route", "portgroup", "virtualport", "hypothetical-future-element"):
        assert root.find(tag) is not None, tag
    assert root.findtext("hypothetical-future-element/detail") == "text a newer libvirt writes"


def test_a_changed_address_is_edited_in_place_and_keeps_tftp():
    ips = (dataclasses.replace(OLD.ips[0], address="10.61.0.2"), OLD.ips[1])
    after = edit(KEEP_XML, OLD, changed(ips=ips))
    element = ET.fromstring(after).find("ip")
    assert element.get("address") == "10.61.0.2" and element.find("tftp") is not None and element.get("localPtr") == "yes"


def test_a_new_address_is_added_and_the_order_of_ips_is_the_wanted_one():
    new_ip = netxml.IpConfig(address="10.62.0.1", prefix=24)
    ips = (OLD.ips[1], new_ip, OLD.ips[0])
    after = edit(KEEP_XML, OLD, changed(ips=ips))
    assert netxml.parse(after).ips == ips
    moved = ET.fromstring(after).findall("ip")[2]
    assert moved.get("localPtr") == "yes" and moved.find("tftp") is not None and moved.find("dhcp/bootp") is not None
    assert ET.fromstring(after).findall("ip")[1].attrib == {"address": "10.62.0.1", "prefix": "24"}


@pytest.mark.parametrize("new, named", [
    (dict(forward=netxml.Forward(mode="route")), "ipv6='yes'"),
    (dict(forward=netxml.Forward(mode="isolated")), "ipv6='yes'"),
    (dict(ips=(OLD.ips[1],)), "localPtr='yes'"),
])
def test_a_change_that_would_drop_something_unmodelled_is_refused_naming_it(new, named):
    with pytest.raises(HypervisorNetworkError) as err:
        edit(KEEP_XML, OLD, changed(**new))
    assert named in err.value.msg and "virsh net-edit keep" in err.value.msg


def test_a_macvtap_pool_is_not_dropped_by_a_mode_change():
    xml = "<network><name>pool</name><forward mode='bridge'><interface dev='eth1'/><interface dev='eth2'/></forward></network>"
    with pytest.raises(HypervisorNetworkError, match="<interface dev='eth1'>"):
        edit(xml, netxml.parse(xml), dataclasses.replace(netxml.parse(xml), forward=netxml.Forward(mode="nat")))


def test_redefine_plan_defines_the_edited_xml_and_diffs_the_real_definition():
    have = host_state(KEEP_XML, KEEP_XML, active=True, autostart=True, ports=("vnet0",))
    wanted = network_from_params(dict(name="keep", mtu=1500))
    result = plan(wanted, have)
    assert [s.action for s in result.steps] == ["define", "destroy", "start", "reattach"]
    defined = result.steps[0].xml
    assert defined == result.after_xml and without(defined, [(".", "mtu")]) == without(KEEP_XML, [(".", "mtu")])
    assert "portgroup" in result.before_xml and "portgroup" in result.after_xml
    assert without(result.before_xml, ()) == without(KEEP_XML, ())


def test_live_update_keeps_live_and_after_xml_shows_it():
    have = host_state(KEEP_XML, KEEP_XML, active=True, autostart=True)
    params = dict(name="keep", ips=[dict(address="10.61.0.1", prefix=24,
                                         dhcp_ranges=[dict(start="10.61.0.100", end="10.61.0.150", lease_expiry=1, lease_unit="hours")],
                                         dhcp_hosts=[dict(mac="52:54:00:61:00:10", name="web", ip="10.61.0.10"),
                                                     dict(mac="52:54:00:61:00:12", name="new", ip="10.61.0.12")]),
                                    dict(address="fd00:61::1", prefix=64)])
    result = plan(network_from_params(params), have)
    assert [(s.action, s.command, s.section) for s in result.steps] == [("update", "add-last", "ip-dhcp-host")]
    assert "52:54:00:61:00:12" in result.after_xml and "tftp" in result.after_xml


HOSTS = st.lists(st.integers(min_value=10, max_value=60), unique=True, max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    mtu=st.one_of(st.none(), st.integers(min_value=68, max_value=9000)),
    stp=st.one_of(st.none(), st.booleans()),
    hosts=HOSTS,
    forwarders=st.lists(st.sampled_from(["198.51.100.53", "203.0.113.53", "203.0.113.54"]), unique=True, max_size=3),
    options=st.lists(st.sampled_from(["log-queries", "edns-packet-max=1232", "cache-size=0"]), unique=True, max_size=3),
    mode=st.sampled_from(["nat", None]),
)
def test_edit_then_parse_gives_the_wanted_model_and_keeps_the_rest(mtu, stp, hosts, forwarders, options, mode):
    params = dict(
        name="keep", mtu=mtu, bridge=dict(stp=stp), forward=dict(mode=mode) if mode else None,
        ips=[dict(address="10.61.0.1", prefix=24,
                  dhcp_ranges=[dict(start="10.61.0.100", end="10.61.0.150")],
                  dhcp_hosts=[dict(mac="52:54:00:61:00:%02d" % h, ip="10.61.0.%d" % h) for h in hosts]),
             dict(address="fd00:61::1", prefix=64)],
        dns=dict(forwarders=[dict(addr=a) for a in forwarders]),
        dnsmasq_options=options,
    )
    new = effective(network_from_params(copy.deepcopy(params)), OLD)
    after = edit(KEEP_XML, OLD, new)
    assert netxml.parse(after) == new
    assert without(after) == without(KEEP_XML)
