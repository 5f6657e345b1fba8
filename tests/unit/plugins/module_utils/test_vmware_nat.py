"""VMware Workstation nat.conf: parser, validation and planner, from fixture files.

VMware Workstation cannot be installed here. tests/unit/fixtures/vmware/nat.conf follows the
layout Workstation writes for vmnet8 on Linux (the documented [host], [tcp], [udp], [netbios],
[incomingtcp] and [incomingudp] sections with their comments); nat-with-dns.conf adds a [dns]
section as the Windows vmnetnat.conf template writes it (``policy = order;``), a duplicated
forward and an unreadable one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from ansible_collections.hypervisor.network.plugins.module_utils import _vmware_nat as vn
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vmware"
STOCK = (FIXTURES / "nat.conf").read_text()
WITH_DNS = (FIXTURES / "nat-with-dns.conf").read_text()


def params(**overrides):
    base = dict(vmnet="vmnet8", path=None, state="present", port_forwards=[], purge_port_forwards=False,
                dns=None, restart_command=list(vn.DEFAULT_RESTART))
    base.update(overrides)
    return base


def fwd(host_port=8080, guest_ip="192.168.79.130", guest_port=80, protocol="tcp"):
    return dict(protocol=protocol, host_port=host_port, guest_ip=guest_ip, guest_port=guest_port)


def new_content(text, **overrides):
    p = params(**overrides)
    forwards, dns, _restart = vn.validate(p, vn.parse(text))
    return vn.plan(text, forwards, dns, p["state"], p["purge_port_forwards"])


def diff_lines(old, new):
    import difflib
    return [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and line[:3] not in ("+++", "---")]


# -- parser -------------------------------------------------------------------------------------
def test_parse_stock_file_ignores_commented_examples():
    parsed = vn.parse(STOCK)
    assert parsed["port_forwards"] == [vn.Forward("tcp", 2222, "192.168.79.128", 22)]
    assert parsed["dns"] == {} and parsed["unreadable_port_forwards"] == []
    assert str(vn.subnet(parsed["host"])) == "192.168.79.0/24"


def test_parse_dns_section_and_odd_forwards():
    parsed = vn.parse(WITH_DNS)
    assert parsed["dns"] == {"policy": "order", "autodetect": "1", "nameserver1": "198.51.100.53", "nameserver2": "198.51.100.54"}
    assert [f.guest_ip for f in parsed["port_forwards"]] == ["192.168.79.130", "192.168.79.131"]
    assert parsed["unreadable_port_forwards"] == [{"protocol": "tcp", "host_port": 9000, "target": "not-a-target"}]


# -- planner ------------------------------------------------------------------------------------
def test_nothing_to_do_returns_the_same_text():
    assert new_content(STOCK, port_forwards=[fwd(2222, "192.168.79.128", 22)]) is STOCK
    assert new_content(STOCK) is STOCK


def test_add_forwards_goes_into_the_right_sections_and_keeps_everything_else():
    new = new_content(STOCK, port_forwards=[fwd(), fwd(6000, "192.168.79.130", 6001, "udp")])
    assert diff_lines(STOCK, new) == ["+8080 = 192.168.79.130:80", "+6000 = 192.168.79.130:6001"]
    assert new.index("2222 = 192.168.79.128:22") < new.index("8080 = 192.168.79.130:80") < new.index("[incomingudp]")
    assert new.index("#6000 = 172.16.3.0:6001") < new.index("6000 = 192.168.79.130:6001")
    assert vn.parse(new)["port_forwards"] == sorted([vn.Forward("tcp", 2222, "192.168.79.128", 22), vn.Forward("tcp", 8080, "192.168.79.130", 80),
                                                     vn.Forward("udp", 6000, "192.168.79.130", 6001)])


def test_change_in_place_and_idempotent():
    new = new_content(STOCK, port_forwards=[fwd(2222, "192.168.79.129", 2022)])
    assert diff_lines(STOCK, new) == ["-2222 = 192.168.79.128:22", "+2222 = 192.168.79.129:2022"]
    assert new_content(new, port_forwards=[fwd(2222, "192.168.79.129", 2022)]) is new


def test_purge_removes_unlisted_and_duplicates():
    new = new_content(WITH_DNS, port_forwards=[fwd()], purge_port_forwards=True)
    assert diff_lines(WITH_DNS, new) == ["-8080 = 192.168.79.131:80", "-9000 = not-a-target"]


def test_duplicate_line_for_a_managed_port_is_dropped_without_purge():
    new = new_content(WITH_DNS, port_forwards=[fwd()])
    assert diff_lines(WITH_DNS, new) == ["-8080 = 192.168.79.131:80"]


def test_absent_removes_by_protocol_and_host_port():
    new = new_content(STOCK, state="absent", port_forwards=[dict(protocol="tcp", host_port=2222, guest_ip=None, guest_port=None)])
    assert diff_lines(STOCK, new) == ["-2222 = 192.168.79.128:22"]
    assert new_content(STOCK, state="absent", port_forwards=[dict(protocol="udp", host_port=2222, guest_ip=None, guest_port=None)]) is STOCK


def test_dns_section_created_when_missing():
    new = new_content(STOCK, dns=dict(policy="rotate", nameservers=["192.0.2.53"], autodetect=None))
    assert new.endswith("\n[dns]\npolicy = rotate\nautodetect = 0\nnameserver1 = 192.0.2.53\n")
    assert new.startswith(STOCK.rstrip("\n"))


def test_dns_updated_in_place_extra_nameservers_removed():
    new = new_content(WITH_DNS, dns=dict(policy="burst", nameservers=["192.0.2.53"], autodetect=None))
    assert sorted(diff_lines(WITH_DNS, new)) == sorted([
        "-policy = order;", "+policy = burst", "-autodetect = 1", "+autodetect = 0",
        "-nameserver1 = 198.51.100.53", "+nameserver1 = 192.0.2.53", "-nameserver2 = 198.51.100.54"])
    assert "#nameserver1 = 208.23.14.2" in new


def test_dns_semicolon_form_counts_as_equal():
    assert new_content(WITH_DNS, dns=dict(policy="order", nameservers=None, autodetect=None)) is WITH_DNS


def test_empty_file_gets_sections():
    new = new_content("", port_forwards=[fwd()])
    assert new == "[incomingtcp]\n8080 = 192.168.79.130:80\n"


_ports = st.integers(1, 65535)


@given(forwards=st.lists(st.tuples(st.sampled_from(["tcp", "udp"]), _ports, st.integers(3, 254), _ports),
                         unique_by=lambda t: (t[0], t[1]), max_size=8))
def test_plan_then_parse_round_trip(forwards):
    wanted = [fwd(port, "192.168.79.%d" % last, guest, proto) for proto, port, last, guest in forwards]
    new = new_content(STOCK, port_forwards=wanted, purge_port_forwards=True)
    expected = sorted(vn.Forward(proto, port, "192.168.79.%d" % last, guest) for proto, port, last, guest in forwards)
    assert vn.parse(new)["port_forwards"] == expected
    assert new_content(new, port_forwards=wanted, purge_port_forwards=True) is new
    assert [line for line in STOCK.splitlines() if line.startswith("#")] == [line for line in new.splitlines() if line.startswith("#")]


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, field", [
    (dict(vmnet="eth0"), "vmnet"),
    (dict(port_forwards=[fwd(host_port=0)]), "port_forwards[0].host_port"),
    (dict(port_forwards=[fwd(host_port="80-90")]), "port_forwards[0].host_port"),
    (dict(port_forwards=[fwd(guest_port=None)]), "port_forwards[0].guest_port"),
    (dict(port_forwards=[fwd(guest_ip="10.0.0.5")]), "port_forwards[0].guest_ip"),
    (dict(port_forwards=[fwd(guest_ip="fd00::5")]), "port_forwards[0].guest_ip"),
    (dict(port_forwards=[fwd(guest_ip="host\nname")]), "port_forwards[0].guest_ip"),
    (dict(port_forwards=[fwd(protocol="sctp")]), "port_forwards[0].protocol"),
    (dict(port_forwards=[fwd(), fwd(guest_port=81)]), "port_forwards[1].host_port"),
    (dict(dns=dict(policy="random")), "dns.policy"),
    (dict(dns=dict(nameservers=["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"])), "dns.nameservers"),
    (dict(dns=dict(nameservers=["1.1.1.1\npolicy = x"])), "dns.nameservers[0]"),
    (dict(dns=dict(nameservers=["2001:db8::53"])), "dns.nameservers[0]"),
    (dict(state="absent", dns=dict(policy="order")), "dns"),
    (dict(restart_command=["vmware-networks '--stop"]), "restart_command[0]"),
    (dict(restart_command=["  "]), "restart_command[0]"),
])
def test_bad_input_names_the_field(overrides, field):
    with pytest.raises(ValidationError) as info:
        vn.validate(params(**overrides), vn.parse(STOCK))
    assert info.value.field == field


def test_restart_commands_split_without_shell():
    _f, _d, restart = vn.validate(params(restart_command=["/usr/bin/vmware-networks --stop", "systemctl restart 'vmware networks'"]), vn.parse(STOCK))
    assert restart == [["/usr/bin/vmware-networks", "--stop"], ["systemctl", "restart", "vmware networks"]]
