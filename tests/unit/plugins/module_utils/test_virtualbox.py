"""VirtualBox NAT networks: parser, validation and planner, from captured VBoxManage output.

No VirtualBox can be installed here. The fixtures under tests/unit/fixtures/virtualbox follow the
layouts VBoxManage prints (VirtualBox 7 ``natnetwork list``, VirtualBox 6 ``list natnets`` and its
shorter ``natnetwork list``), including names with spaces and rules with an empty host IP.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from ansible_collections.hypervisor.network.plugins.module_utils import _virtualbox as vb
from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    HypervisorNetworkError,
    ValidationError,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "virtualbox"


def fixture(name):
    return (FIXTURES / name).read_text()


def params(**overrides):
    base = dict(name="lab net", state="present", network="10.0.2.0/24", enabled=None, dhcp=None, ipv6=None,
                port_forwards=None, loopback_mappings=None)
    base.update(overrides)
    return base


def fwd(name="ssh", protocol="tcp", host_ip="", host_port=2222, guest_ip="10.0.2.15", guest_port=22):
    return dict(name=name, protocol=protocol, host_ip=host_ip, host_port=host_port, guest_ip=guest_ip, guest_port=guest_port)


# -- parser -------------------------------------------------------------------------------------
def test_parse_virtualbox7_natnetwork_list():
    nets = vb.parse_natnetworks(fixture("natnetwork-list-7.txt"))
    assert list(nets) == ["NatNetwork", "lab net 2"]
    first = nets["NatNetwork"]
    assert (first.network, first.gateway, first.enabled, first.dhcp, first.ipv6) == ("10.0.2.0/24", "10.0.2.1", True, True, False)
    rules = {f.name: f for f in first.forwards}
    assert rules["Rule 1"] == vb.PortForward("Rule 1", "tcp", "", 2222, "10.0.2.7", 22)
    assert rules["web"].host_ip == "127.0.0.1"
    # VirtualBox may print an IPv6 guest address uncompressed; it is normalised for comparison
    assert rules["dns6"] == vb.PortForward("dns6", "udp", "", 5353, "fd17:625c:f037:2::15", 53)
    assert rules["dns6"].ipv6 and not rules["Rule 1"].ipv6
    assert first.loopbacks == (("127.0.0.1", 2),)
    second = nets["lab net 2"]
    assert (second.enabled, second.dhcp, second.ipv6, second.forwards, second.loopbacks) == (False, False, True, (), ())


def test_parse_virtualbox6_list_natnets_gives_the_same_facts():
    old = vb.parse_natnetworks(fixture("list-natnets-6.txt"))
    new = vb.parse_natnetworks(fixture("natnetwork-list-7.txt"))
    assert old["lab net 2"].to_dict() == new["lab net 2"].to_dict()
    assert old["NatNetwork"].gateway == "10.0.2.1"
    assert [f.name for f in old["NatNetwork"].forwards] == ["Rule 1"]
    assert all(vb.is_complete(n) for n in old.values())


def test_virtualbox6_natnetwork_list_is_incomplete():
    nets = vb.parse_natnetworks(fixture("natnetwork-list-6.txt"))
    assert nets["NatNetwork"].network == "10.0.2.0/24"
    assert not vb.is_complete(nets["NatNetwork"])


def test_parse_empty_list():
    assert vb.parse_natnetworks(fixture("natnetwork-list-empty.txt")) == {}
    assert vb.parse_natnetworks("") == {}


@pytest.mark.parametrize("rule, expected", [
    ("a b c:udp:[]:53:[10.0.2.5]:53", ("a b c", "udp", "", 53, "10.0.2.5", 53)),
    ("x:TCP:[0.0.0.0]:1:[10.0.2.5]:65535", ("x", "tcp", "0.0.0.0", 1, "10.0.2.5", 65535)),
    ("v6:tcp:[::]:80:[fd00::1]:8080", ("v6", "tcp", "::", 80, "fd00::1", 8080)),
    (":tcp:[]:80:[10.0.0.1]:80", ("", "tcp", "", 80, "10.0.0.1", 80)),
])
def test_parse_rule_odd_cases(rule, expected):
    assert vb.parse_rule(rule) == vb.PortForward(*expected)


@pytest.mark.parametrize("rule", ["nonsense", "x:icmp:[]:1:[10.0.0.1]:1", "x:tcp:[]:80:[not-an-ip]:80"])
def test_parse_rule_rejects_unknown_forms(rule):
    with pytest.raises(HypervisorNetworkError):
        vb.parse_rule(rule)


def test_unreadable_loopback_mapping_is_a_clear_error():
    text = "Name:         n\nNetwork:      10.0.2.0/24\nDHCP Server:  Yes\nloopback mappings (ipv4)\n        127.0.0.1\n"
    with pytest.raises(HypervisorNetworkError, match="loopback mapping"):
        vb.parse_natnetworks(text)


_names = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters=":[]"),
                 min_size=1, max_size=20).filter(lambda s: s == s.strip())


@given(name=_names, protocol=st.sampled_from(["tcp", "udp"]), host_port=st.integers(1, 65535),
       guest_port=st.integers(1, 65535), host=st.sampled_from(["", "127.0.0.1", "0.0.0.0"]),
       last=st.integers(2, 254))
def test_rule_render_parse_round_trip(name, protocol, host_port, guest_port, host, last):
    forward = vb.PortForward(name, protocol, host, host_port, "10.0.2.%d" % last, guest_port)
    assert vb.parse_rule(forward.rule()) == forward


@given(name=_names)
def test_network_name_round_trip_through_listing(name):
    text = "NAT Networks:\n\nName:         %s\nEnabled:      Yes\nNetwork:      10.0.2.0/24\n" \
           "DHCP Server:  Yes\nIPv6:         No\n\n1 network found\n" % name
    assert list(vb.parse_natnetworks(text)) == [name]


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, field", [
    (dict(name=" lead"), "name"),
    (dict(name=""), "name"),
    (dict(name="a\nb"), "name"),
    (dict(network=None), "network"),
    (dict(network="10.0.2.1/24"), "network"),
    (dict(network="fd00::/64"), "network"),
    (dict(port_forwards=[fwd(name="a:b")]), "port_forwards[0].name"),
    (dict(port_forwards=[fwd(name="x" * 64)]), "port_forwards[0].name"),
    (dict(port_forwards=[fwd(protocol="icmp")]), "port_forwards[0].protocol"),
    (dict(port_forwards=[fwd(host_port=0)]), "port_forwards[0].host_port"),
    (dict(port_forwards=[fwd(guest_port=70000)]), "port_forwards[0].guest_port"),
    (dict(port_forwards=[fwd(guest_ip="10.9.9.9")]), "port_forwards[0].guest_ip"),
    (dict(port_forwards=[fwd(guest_ip="nope")]), "port_forwards[0].guest_ip"),
    (dict(port_forwards=[fwd(host_ip="::1")]), "port_forwards[0].host_ip"),
    (dict(port_forwards=[fwd(), fwd(host_port=2223)]), "port_forwards[1].name"),
    (dict(port_forwards=[fwd(), fwd(name="other")]), "port_forwards[1].host_port"),
    (dict(loopback_mappings=[dict(address="10.0.0.1", offset=2)]), "loopback_mappings[0].address"),
    (dict(loopback_mappings=[dict(address="127.0.0.1", offset=0)]), "loopback_mappings[0].offset"),
    (dict(loopback_mappings=[dict(address="127.0.0.1", offset=300)]), "loopback_mappings[0].offset"),
])
def test_bad_input_names_the_field(overrides, field):
    with pytest.raises(ValidationError) as info:
        vb.want_from_params(params(**overrides))
    assert info.value.field == field
    assert field.split(".")[0].split("[")[0] in info.value.msg


def test_same_name_allowed_once_per_family():
    want = vb.want_from_params(params(port_forwards=[fwd(), fwd(guest_ip="fd00::5")]))
    assert [f.ipv6 for f in want.forwards] == [False, True]


# -- planner ------------------------------------------------------------------------------------
def have_from_fixture(name="NatNetwork"):
    return vb.parse_natnetworks(fixture("natnetwork-list-7.txt"))[name]


def test_plan_create_is_one_add():
    want = vb.want_from_params(params(name="new net", port_forwards=[fwd()], loopback_mappings=[dict(address="127.0.0.1", offset=2)]))
    assert vb.plan(want, None, "present") == [[
        "VBoxManage", "natnetwork", "add", "--netname", "new net", "--network", "10.0.2.0/24", "--enable",
        "--dhcp", "on", "--ipv6", "off", "--port-forward-4", "ssh:tcp:[]:2222:[10.0.2.15]:22",
        "--loopback-4", "127.0.0.1=2"]]


def test_plan_nothing_when_equal():
    have = have_from_fixture()
    want = vb.want_from_params(params(
        name="NatNetwork", enabled=True, dhcp=True, ipv6=False,
        port_forwards=[fwd("Rule 1", host_port=2222, guest_ip="10.0.2.7"),
                       fwd("web", host_ip="127.0.0.1", host_port=8080, guest_ip="10.0.2.8", guest_port=80),
                       fwd("dns6", "udp", "", 5353, "fd17:625c:f037:2::15", 53)],
        loopback_mappings=[dict(address="127.0.0.1", offset=2)]))
    assert vb.plan(want, have, "present") == []


def test_plan_unmanaged_settings_are_left_alone():
    want = vb.want_from_params(params(name="NatNetwork"))
    assert vb.plan(want, have_from_fixture(), "present") == []


def test_plan_modify_deletes_before_adds_and_changes_only_what_differs():
    have = have_from_fixture()
    want = vb.want_from_params(params(
        name="NatNetwork", dhcp=False, enabled=False,
        port_forwards=[fwd("Rule 1", host_port=2200, guest_ip="10.0.2.7"), fwd("new", "udp", "", 53, "10.0.2.9", 53)],
        loopback_mappings=[]))
    assert vb.plan(want, have, "present") == [[
        "VBoxManage", "natnetwork", "modify", "--netname", "NatNetwork",
        "--dhcp", "off",
        "--port-forward-4", "delete", "Rule 1", "--port-forward-6", "delete", "dns6", "--port-forward-4", "delete", "web",
        "--port-forward-4", "Rule 1:tcp:[]:2200:[10.0.2.7]:22", "--port-forward-4", "new:udp:[]:53:[10.0.2.9]:53",
        "--loopback-4", "delete", "127.0.0.1",
        "--disable"]]


def test_plan_network_change():
    want = vb.want_from_params(params(name="NatNetwork", network="10.0.3.0/24"))
    assert vb.plan(want, have_from_fixture(), "present")[0][5:] == ["--network", "10.0.3.0/24"]


def test_plan_absent():
    want = vb.want_from_params(params(name="NatNetwork", state="absent", network=None))
    assert vb.plan(want, have_from_fixture(), "absent") == [["VBoxManage", "natnetwork", "remove", "--netname", "NatNetwork"]]
    assert vb.plan(want, None, "absent") == []


def test_predict_matches_a_fresh_network():
    want = vb.want_from_params(params(port_forwards=[fwd()]))
    after = vb.predict(want, None, "present")
    assert (after.enabled, after.dhcp, after.ipv6) == (True, True, False)
    assert [f["name"] for f in after.to_dict()["port_forwards"]] == ["ssh"]
