# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared validators (_validate.py): what each accepts, what it refuses and that the error
names the field and the value. Plus the sweep over plugins/ for patterns anchored with '$', which
also matches before a trailing newline."""

from __future__ import annotations

import ast
import ipaddress
import re
from pathlib import Path

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils import _validate as v
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

PLUGINS = Path(__file__).resolve().parents[4] / "plugins"


def refused(func, *args, **kwargs):
    with pytest.raises(ValidationError) as info:
        func(*args, **kwargs)
    return info.value


# -- interface names ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["br0", "eth0.30", "vnet-12_a", "x" * 15])
def test_interface_name_accepts_what_linux_accepts(name):
    assert v.interface_name("ports[0]", name) == name


@pytest.mark.parametrize("name", ["", "x" * 16, ".", "..", "a/b", "a:b", "a b", "br0\n", "a\tb", "\x7f", None, 5])
def test_interface_name_refuses_naming_field_and_value(name):
    error = refused(v.interface_name, "ports[0]", name)
    assert error.field == "ports[0]" and error.value == name
    assert error.msg.startswith("ports[0]: %r is not valid" % (name,))


# -- addresses and networks -----------------------------------------------------------------

def test_network_strict_and_loose():
    assert v.network("source", "10.0.0.0/24") == ipaddress.ip_network("10.0.0.0/24")
    assert refused(v.network, "source", "10.0.0.1/24").field == "source"
    assert v.network("source", "10.0.0.1/24", strict=False) == ipaddress.ip_network("10.0.0.0/24")
    assert refused(v.network, "source", "10.0.0.0/33").value == "10.0.0.0/33"


@pytest.mark.parametrize("bad", ["10.0.0.256", "10.0.0.1\n", "", "fd00::1::2", "example.com"])
def test_address_refuses(bad):
    assert refused(v.address, "destination", bad).field == "destination"


def test_address_parses_both_families():
    assert v.address("d", "10.0.0.1").version == 4
    assert v.address("d", "fd00::1").version == 6


# -- ports ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(80, (80, 80)), ("80", (80, 80)), ("8000-8010", (8000, 8010)),
                                             ("8000:8010", (8000, 8010)), (" 22 ", (22, 22)), ("1-65535", (1, 65535))])
def test_port_range_accepts(value, expected):
    assert v.port_range("host_port", value) == expected


@pytest.mark.parametrize("value", [0, "65536", "10-5", "a", "1-2-3", "", "-1", "80/tcp"])
def test_port_range_refuses(value):
    error = refused(v.port_range, "host_port", value)
    assert error.field == "host_port" and error.value == value


# -- comments -------------------------------------------------------------------------------

def test_comment_accepts_plain_text_and_treats_empty_as_none():
    assert v.comment("comment", "web server (guest g1)") == "web server (guest g1)"
    assert v.comment("comment", None) is None
    assert v.comment("comment", "") is None


@pytest.mark.parametrize("bad", ['a"b', "a\\b", "a\nb", "trailing\n", "\x00", "x" * 129, "é" * 65])
def test_comment_refuses_what_breaks_quoting_or_is_too_long(bad):
    assert refused(v.comment, "comment", bad).field == "comment"


# -- DNS names ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [("example.com", "example.com"), ("example.com.", "example.com"),
                                            ("_srv.lab", "_srv.lab"), ("a" * 63 + ".lab", "a" * 63 + ".lab"),
                                            ("web", "web")])
def test_dns_name_accepts(name, expected):
    assert v.dns_name("domain", name) == expected


@pytest.mark.parametrize("name", ["example.com\n", "web\n", "ex ample.lan", "a..b", "-a.lab", "a-.lab", "a,b", "corp/evil",
                                  "a" * 64 + ".lab", ".".join(["a" * 63] * 4) + ".abc", "", "*.lab"])
def test_dns_name_refuses(name):
    """Regression: with '$' in the label pattern, "example.com\\n" passed."""
    error = refused(v.dns_name, "domain", name)
    assert error.field == "domain" and error.value == name


def test_dns_name_wildcard_only_when_allowed():
    assert v.dns_name("hosts[0]", "*.lab", allow_wildcard=True) == "*.lab"


# -- MAC addresses, dnsmasq options, lease times, ranges -----------------------------------

def test_mac_address_normalises():
    assert v.mac_address("mac", "52-54-00-AB-CD-EF") == "52:54:00:ab:cd:ef"


@pytest.mark.parametrize("bad", ["52:54:00:ab:cd:ef\n", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:00", "zz:54:00:ab:cd:ef",
                                 "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01", None, 525400])
def test_mac_address_refuses_malformed_and_multicast(bad):
    error = refused(v.mac_address, "dhcp_hosts[0].mac", bad)
    assert error.field == "dhcp_hosts[0].mac" and error.value == bad


def test_mac_address_multicast_when_asked_for():
    assert v.mac_address("mac", "01:00:5e:00:00:01", unicast=False) == "01:00:5e:00:00:01"


@pytest.mark.parametrize("option", ["log-queries", "edns-packet-max=1232", "dhcp-option=option:ntp-server,10.0.0.1"])
def test_dnsmasq_option_accepts_one_line(option):
    assert v.dnsmasq_option("options[0]", option) == option


@pytest.mark.parametrize("option", ["log-queries\n", "log-queries\nconf-file=/etc/x", "a=b#c", "=x", "Upper", "", None])
def test_dnsmasq_option_refuses(option):
    assert refused(v.dnsmasq_option, "options[0]", option).value == option


@pytest.mark.parametrize("value", ["1h", "30m", "infinite", "3600", 3600, "2w"])
def test_lease_time_accepts(value):
    assert v.lease_time("lease_time", value) == str(value)


@pytest.mark.parametrize("value", ["1h,evil", "1h\n", "1y", "", "forever", True, None, "1.5h"])
def test_lease_time_refuses(value):
    assert refused(v.lease_time, "lease_time", value).value == value


SUBNET = [ipaddress.ip_interface("10.30.0.1/24")]


def test_address_range_inside_the_subnet():
    low, high, iface = v.address_range("dhcp_ranges[0]", "10.30.0.100", "10.30.0.199", SUBNET)
    assert (str(low), str(high), iface) == ("10.30.0.100", "10.30.0.199", SUBNET[0])


@pytest.mark.parametrize("start, end, field, words", [
    ("10.30.0.199", "10.30.0.100", "dhcp_ranges[0].end", "reversed"),
    ("10.31.0.1", "10.31.0.9", "dhcp_ranges[0].start", "not inside"),
    ("10.30.0.250", "10.30.1.5", "dhcp_ranges[0].start", "not inside"),
    ("10.30.0.0", "10.30.0.0", "dhcp_ranges[0].start", "network address"),
    ("10.30.0.200", "10.30.0.255", "dhcp_ranges[0].start", "broadcast address"),
    ("10.30.0.1", "10.30.0.9", "dhcp_ranges[0].start", "own address"),
    ("10.30.0.2", "fd00::9", "dhcp_ranges[0].end", "families"),
    ("10.30.0.x", "10.30.0.9", "dhcp_ranges[0].start", "not an IPv4"),
])
def test_address_range_refuses(start, end, field, words):
    error = refused(v.address_range, "dhcp_ranges[0]", start, end, SUBNET)
    assert error.field == field and words in error.msg


# -- the '$' sweep --------------------------------------------------------------------------

def _patterns():
    """Every string literal given to re.compile/match/fullmatch/search in plugins/."""
    for path in sorted(PLUGINS.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in
                    ("compile", "match", "fullmatch", "search") and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "re" and node.args):
                parts = [a for a in ast.walk(node.args[0]) if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if parts:
                    yield "%s:%d" % (path.relative_to(PLUGINS), node.lineno), "".join(p.value for p in parts)


def test_the_sweep_sees_the_patterns():
    assert any(where.startswith("module_utils/_validate.py") for where, _p in _patterns())


def test_no_pattern_in_plugins_ends_in_dollar():
    """'$' matches before a final newline, so "value\\n" passes a '^...$' validator; '\\Z' is meant."""
    offenders = [where for where, pattern in _patterns() if re.search(r"(?<!\\)\$", pattern)]
    assert offenders == []


@pytest.mark.parametrize("check", [
    lambda: __import__("ansible_collections.hypervisor.network.plugins.module_utils._bridge.model",
                       fromlist=["x"]).want_from_params(dict(name="br0", mac="02:00:00:00:00:01\n")),
    lambda: __import__("ansible_collections.hypervisor.network.plugins.module_utils._libvirt.interface_module",
                       fromlist=["x"]).settings_from_params(dict(model="virtio\n", network="default")),
    lambda: __import__("ansible_collections.hypervisor.network.plugins.module_utils._vmware_nat",
                       fromlist=["x"]).check_vmnet(dict(vmnet="vmnet8\n")),
], ids=["bridge-mac", "libvirt-interface-model", "vmware-vmnet"])
def test_validators_elsewhere_refuse_a_trailing_newline(check):
    """Regression: each of these accepted its value with a newline appended."""
    with pytest.raises(ValidationError):
        check()
