# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_network input validation and XML render/parse: no root, no libvirtd."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import network_xml as netxml
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError
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
    network_from_params,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "libvirt"

GOOD = dict(
    name="lab",
    forward=dict(mode="nat", nat_port_start=1024, nat_port_end=65535),
    bridge=dict(name="virbr9", stp=True, delay=0),
    mtu=1400,
    domain="lab.internal",
    ips=[
        dict(
            address="10.77.0.1",
            prefix=24,
            dhcp_ranges=[dict(start="10.77.0.100", end="10.77.0.200", lease_expiry=1, lease_unit="hours")],
            dhcp_hosts=[dict(mac="52:54:00:00:00:01", name="web", ip="10.77.0.10")],
        ),
        dict(address="fd00:77::1", prefix=64, dhcp_ranges=[dict(start="fd00:77::100", end="fd00:77::1ff")]),
    ],
    dns=dict(
        forwarders=[dict(domain="corp.example", addr="198.51.100.53"), dict(addr="203.0.113.53", port=5353)],
        hosts=[dict(ip="10.77.0.5", hostnames=["files", "nas"])],
        srv=[dict(service="ldap", protocol="tcp", domain="lab.internal", target="dc.lab.internal", port=389)],
        txt=[dict(name="info", value="hello world")],
    ),
    dnsmasq_options=["edns-packet-max=4096", "log-queries"],
)


def with_change(path, value):
    params = copy.deepcopy(GOOD)
    target = params
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return params


def test_good_params_validate_and_normalise():
    net = network_from_params(dict(GOOD, mac="52-54-00-AA-BB-CC"))
    assert net.mac == "52:54:00:aa:bb:cc"
    assert net.ips[1].address == "fd00:77::1"
    assert [f.domain for f in net.dns.forwarders] == ["corp.example", None]  # order kept
    assert net.dnsmasq_options == ("edns-packet-max=4096", "log-queries")


def test_unset_options_stay_unset():
    net = network_from_params(dict(name="lab"))
    assert net.forward is None and net.ips is None and net.dns is None and net.dnsmasq_options is None


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("forward", "mode"), "tunnel", "forward.mode"),
        (("ips", 0, "address"), "10.77.0.300", "ips[0].address"),
        (("ips", 0, "dhcp_hosts", 0, "ip"), "10.78.0.10", "ips[0].dhcp_hosts[0].ip"),
        (("ips", 0, "dhcp_ranges", 0, "end"), "10.78.0.200", "ips[0].dhcp_ranges[0].end"),
        (("ips", 0, "dhcp_ranges", 0, "start"), "10.77.0.250", "ips[0].dhcp_ranges[0]"),
        (("ips", 1, "dhcp_ranges", 0, "start"), "10.77.0.150", "ips[1].dhcp_ranges[0].start"),
        (("dns", "forwarders", 0, "domain"), "corp example", "dns.forwarders[0].domain"),
        (("dns", "forwarders", 0, "domain"), "bad..name", "dns.forwarders[0].domain"),
        (("dns", "hosts", 0, "hostnames"), ["ok", "-bad"], "dns.hosts[0].hostnames[1]"),
        (("bridge", "name"), "virbr-much-too-long", "bridge.name"),
        (("dnsmasq_options",), ["edns-packet-max=4096\ndhcp-script=/tmp/x"], "dnsmasq_options[0]"),
        (("dnsmasq_options",), ["server=1.1.1.1 # comment"], "dnsmasq_options[0]"),
        (("mac",), "52:54:00:zz:00:01", "mac"),
        (("forward", "nat_port_start"), 70000, "forward.nat_port_start"),
    ],
)
def test_bad_input_names_the_field(path, value, field):
    with pytest.raises(ValidationError) as err:
        network_from_params(with_change(path, value))
    assert err.value.field == field


@pytest.mark.parametrize(
    "path, value, field, reason",
    [
        # port 0 is refused, not silently turned into the other bound
        (("forward",), dict(mode="nat", nat_port_start=0, nat_port_end=100), "forward.nat_port_start", "from 1 to 65535"),
        (("forward",), dict(mode="nat", nat_port_start=2000, nat_port_end=0), "forward.nat_port_end", "from 1 to 65535"),
        (("forward",), dict(mode="nat", nat_port_start=3000, nat_port_end=2000), "forward.nat_port_end", "reversed"),
        (("ips", 0, "dhcp_ranges"), [dict(start="10.77.0.0", end="10.77.0.20")], "ips[0].dhcp_ranges[0]", "network address"),
        (("ips", 0, "dhcp_ranges"), [dict(start="10.77.0.200", end="10.77.0.255")], "ips[0].dhcp_ranges[0]", "broadcast address"),
        (("ips", 0, "dhcp_ranges"), [dict(start="10.77.0.1", end="10.77.0.20")], "ips[0].dhcp_ranges[0]", "gateway"),
        (("ips", 1, "dhcp_ranges"), [dict(start="fd00:77::", end="fd00:77::ff")], "ips[1].dhcp_ranges[0]", "network address"),
        (("ips", 0, "dhcp_ranges"), [dict(start="10.77.0.100", end="10.77.0.150"), dict(start="10.77.0.20", end="10.77.0.40"),
                                     dict(start="10.77.0.150", end="10.77.0.160")], "ips[0].dhcp_ranges[2]", "overlaps dhcp_ranges[0]"),
        (("ips", 0, "dhcp_hosts", 0, "ip"), "10.77.0.1", "ips[0].dhcp_hosts[0].ip", "gateway"),
        (("ips", 0, "dhcp_hosts", 0, "mac"), "01:00:5e:00:00:01", "ips[0].dhcp_hosts[0].mac", "multicast"),
        (("mac",), "33:33:00:00:00:01", "mac", "multicast"),
    ],
)
def test_ranges_ports_and_macs_that_cannot_work_are_refused(path, value, field, reason):
    with pytest.raises(ValidationError) as err:
        network_from_params(with_change(path, value))
    assert err.value.field == field and reason in err.value.msg


def test_one_sided_nat_port_and_adjacent_ranges_still_pass():
    forward = network_from_params(with_change(("forward",), dict(mode="nat", nat_port_start=20000))).forward
    assert (forward.nat_port_start, forward.nat_port_end) == (20000, 20000)
    ranges = [dict(start="10.77.0.100", end="10.77.0.149"), dict(start="10.77.0.150", end="10.77.0.254")]
    assert len(network_from_params(with_change(("ips", 0, "dhcp_ranges"), ranges)).ips[0].dhcp_ranges) == 2


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1-\u00b2"])
def test_port_range_refuses_non_ascii_digits_with_a_validation_error(value):
    """_validate.port_range is shared: "²" passed isdigit() and then int() raised a bare ValueError."""
    from ansible_collections.hypervisor.network.plugins.module_utils import _validate

    with pytest.raises(ValidationError) as err:
        _validate.port_range("host_port", value)
    assert err.value.field == "host_port"


def test_duplicate_mac_and_ip_in_dhcp_hosts():
    hosts = [dict(mac="52:54:00:00:00:01", ip="10.77.0.10"), dict(mac="52:54:00:00:00:01", ip="10.77.0.11")]
    with pytest.raises(ValidationError) as err:
        network_from_params(with_change(("ips", 0, "dhcp_hosts"), hosts))
    assert err.value.field == "ips[0].dhcp_hosts[1].mac"
    hosts = [dict(mac="52:54:00:00:00:01", ip="10.77.0.10"), dict(mac="52:54:00:00:00:02", ip="10.77.0.10")]
    with pytest.raises(ValidationError) as err:
        network_from_params(with_change(("ips", 0, "dhcp_hosts"), hosts))
    assert err.value.field == "ips[0].dhcp_hosts[1].ip"


def test_bridge_mode_needs_a_bridge_and_no_addresses():
    with pytest.raises(ValidationError, match="bridge.name"):
        network_from_params(dict(name="lan", forward=dict(mode="bridge")))
    with pytest.raises(ValidationError, match="ips"):
        network_from_params(dict(name="lan", forward=dict(mode="bridge"), bridge=dict(name="br0"), ips=GOOD["ips"]))


def test_render_parse_round_trip_of_validated_params():
    net = network_from_params(GOOD)
    assert netxml.parse(netxml.render(net)) == net


def test_parse_normalises_libvirt_output():
    inactive = netxml.parse((FIXTURES / "lab_inactive.xml").read_text())
    live = netxml.parse((FIXTURES / "lab_live.xml").read_text())
    assert inactive == live  # the running XML's default NAT port range is the persistent default
    assert inactive.forward == Forward("nat", nat_port_start=1024, nat_port_end=65535)
    packaged = netxml.parse((FIXTURES / "default_packaged.xml").read_text())
    assert packaged.ips[0].prefix == 24  # netmask= is read as a prefix


def test_dnsmasq_options_render_in_libvirt_namespace():
    text = netxml.render(network_from_params(GOOD))
    assert 'xmlns:dnsmasq="http://libvirt.org/schemas/network/dnsmasq/1.0"' in text
    assert '<dnsmasq:option value="edns-packet-max=4096" />' in text


# -- property: render -> parse is the identity on normalised networks --------------------------
_octet = st.integers(min_value=2, max_value=250)
# cheap strategies (from_regex is slow to draw from): a letter, then letters and digits
_label = st.builds(lambda first, rest: first + rest, st.sampled_from("abcdxyz"), st.text("abz019", max_size=7))
_name = st.builds(lambda a, b: "%s.%s" % (a, b), _label, _label)
_mac = st.builds(lambda n: "52:54:00:00:%02x:%02x" % divmod(n, 256), st.integers(0, 65535))


@st.composite
def networks(draw):
    third = draw(st.integers(0, 255))
    subnet = "10.%d.%d" % (draw(st.integers(0, 255)), third)
    low = draw(st.integers(2, 100))
    ranges = (DhcpRange("%s.%d" % (subnet, low), "%s.%d" % (subnet, low + draw(st.integers(0, 100))),
                        *draw(st.sampled_from([(None, None), (30, "minutes"), (2, "hours")]))),)
    host_octets = draw(st.lists(_octet, unique=True, max_size=4))
    macs = draw(st.lists(_mac, unique=True, min_size=len(host_octets), max_size=len(host_octets)))
    hosts = tuple(sorted((DhcpHost("%s.%d" % (subnet, o), m, draw(st.none() | _label)) for o, m in zip(host_octets, macs)),
                         key=lambda h: (h.ip, h.mac, h.name or "")))
    forwarders = tuple(draw(st.lists(st.builds(DnsForwarder, st.sampled_from(["198.51.100.53", "203.0.113.1", None]),
                                               st.none() | _name, st.none()), max_size=3)))
    forwarders = tuple(f for f in forwarders if f.addr or f.domain)
    dns = Dns(
        enable=draw(st.none() | st.booleans()),
        forward_plain_names=draw(st.none() | st.booleans()),
        forwarders=forwarders,
        hosts=tuple(sorted({DnsHost("%s.%d" % (subnet, o), tuple(sorted(set(n)))) for o, n in
                            draw(st.lists(st.tuples(_octet, st.lists(_label, min_size=1, max_size=2)), max_size=2))},
                           key=lambda h: (h.ip, h.hostnames))),
        srvs=tuple(sorted(set(draw(st.lists(st.builds(DnsSrv, _label, st.sampled_from(["tcp", "udp"]), st.none() | _name,
                                                      st.none() | _name, st.none() | st.integers(1, 65535)), max_size=2))),
                          key=lambda s: (s.service, s.protocol, s.domain or "", s.target or "", str(s.port or "")))),
        txts=tuple(sorted({DnsTxt(n, v) for n, v in draw(st.lists(st.tuples(_label, _label), max_size=2))},
                          key=lambda t: (t.name, t.value))),
    )
    mode = draw(st.sampled_from(["nat", "route", "open", "isolated"]))
    return Network(
        name=draw(_label),
        uuid=draw(st.none() | st.uuids().map(str)),
        forward=Forward(mode, nat_port_start=1024, nat_port_end=65535) if mode == "nat" else Forward(mode),
        bridge=draw(st.none() | st.integers(0, 999).map(lambda n: "virbr%d" % n)),
        stp=draw(st.none() | st.booleans()),
        delay=draw(st.none() | st.integers(0, 30)),
        mtu=draw(st.none() | st.integers(576, 9000)),
        mac=draw(st.none() | _mac),
        domain=draw(st.none() | _name),
        ips=(IpConfig("%s.1" % subnet, 24, ranges, hosts),),
        dns=dns,
        dnsmasq_options=tuple(draw(st.lists(st.sampled_from(["edns-packet-max=4096", "log-queries", "cache-size=0"]), max_size=2))),
    )


@settings(max_examples=100, deadline=None)
@given(networks())
def test_render_parse_round_trip(net):
    assert netxml.parse(netxml.render(net)) == net


def test_lists_whose_order_means_nothing_compare_equal_in_any_order():
    """Options in one order, libvirt's XML in another, a planner's replace() in a third: the
    DHCP hosts and ranges and the DNS hosts, SRV and TXT records are one set, the forwarders
    (asked in turn by dnsmasq) keep their order."""
    hosts = [dict(mac="52:54:00:00:00:0%d" % i, name="h%d" % i, ip="10.77.0.1%d" % i) for i in (3, 1, 2)]
    ranges = [dict(start="10.77.0.200", end="10.77.0.210"), dict(start="10.77.0.100", end="10.77.0.110")]
    txts = [dict(name="b", value="2"), dict(name="a", value="1")]
    given_order = with_change(("ips",), [dict(GOOD["ips"][0], dhcp_hosts=hosts, dhcp_ranges=ranges)])
    given_order["dns"] = dict(GOOD["dns"], txt=txts, hosts=[dict(ip="10.77.0.6", hostnames=["b"]), dict(ip="10.77.0.5", hostnames=["a"])])
    reversed_order = copy.deepcopy(given_order)
    reversed_order["ips"][0]["dhcp_hosts"].reverse()
    reversed_order["ips"][0]["dhcp_ranges"].reverse()
    reversed_order["dns"]["txt"].reverse()
    reversed_order["dns"]["hosts"].reverse()
    net = network_from_params(given_order)
    assert net == network_from_params(reversed_order)
    assert [h.name for h in net.ips[0].dhcp_hosts] == ["h1", "h2", "h3"]
    assert netxml.parse(netxml.render(net)) == net
    ip = net.ips[0]
    assert IpConfig(ip.address, ip.prefix, tuple(reversed(ip.dhcp_ranges)), tuple(reversed(ip.dhcp_hosts))) == ip
    dns = net.dns
    assert Dns(dns.enable, dns.forward_plain_names, dns.forwarders, tuple(reversed(dns.hosts)), dns.srvs, tuple(reversed(dns.txts))) == dns
    assert [f.domain for f in net.dns.forwarders] == ["corp.example", None]
