# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt_network planner from captured libvirt XML: no root, no libvirtd."""

from __future__ import annotations

import copy
from pathlib import Path

from fake_module import FakeModule

from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import network_xml as netxml
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_model import network_from_params
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_plan import HostState, host_state, plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "libvirt"
CONFIG_XML, LIVE_XML = (FIXTURES / "lab_inactive.xml").read_text(), (FIXTURES / "lab_live.xml").read_text()
CONFIG, LIVE = netxml.parse(CONFIG_XML), netxml.parse(LIVE_XML)
RUNNING = host_state(CONFIG_XML, LIVE_XML, active=True, autostart=True, ports=("vnet0", "vnet1"))
STOPPED = host_state(CONFIG_XML, active=False, autostart=True)

# The options that describe exactly what the fixture holds.
SAME = dict(
    name="lab",
    bridge=dict(name="virbr9"),
    domain="lab.internal",
    ips=[
        dict(
            address="10.77.0.1",
            prefix=24,
            dhcp_ranges=[dict(start="10.77.0.100", end="10.77.0.200", lease_expiry=1, lease_unit="hours")],
            dhcp_hosts=[dict(mac="52:54:00:00:00:01", name="web", ip="10.77.0.10")],
        )
    ],
    dns=dict(forwarders=[dict(addr="203.0.113.53")], hosts=[dict(ip="10.77.0.5", hostnames=["files"])]),
    dnsmasq_options=["edns-packet-max=4096"],
)


def want(**changes):
    params = copy.deepcopy(SAME)
    params.update(changes)
    return network_from_params(params)


def shown(result):
    return [step.shown() for step in result.steps]


def test_same_definition_plans_nothing():
    assert plan(want(), RUNNING, autostart=True).steps == ()
    assert plan(network_from_params(dict(name="lab")), RUNNING, autostart=True).steps == ()  # unset keeps


def test_new_network_is_defined_started_and_autostarted():
    result = plan(want(), HostState(), autostart=True)
    assert [s.action for s in result.steps] == ["define", "start", "autostart"]
    assert "<uuid>" not in result.steps[0].xml
    assert result.restarted is False


def test_added_dhcp_host_is_a_live_update_without_restart():
    ips = copy.deepcopy(SAME["ips"])
    ips[0]["dhcp_hosts"].append(dict(mac="52:54:00:00:00:02", name="db", ip="10.77.0.11"))
    result = plan(want(ips=ips), RUNNING, autostart=True)
    assert shown(result) == [
        "virsh net-update lab add-last ip-dhcp-host '<host mac=\"52:54:00:00:00:02\" name=\"db\" ip=\"10.77.0.11\" />'"
        " --parent-index 0 --live --config"
    ]
    assert result.restarted is False


def test_stopped_network_is_updated_in_its_config_only():
    ips = copy.deepcopy(SAME["ips"])
    ips[0]["dhcp_hosts"] = []
    result = plan(want(ips=ips), STOPPED, active=False, autostart=True)
    assert shown(result) == [
        "virsh net-update lab delete ip-dhcp-host '<host mac=\"52:54:00:00:00:01\" name=\"web\" ip=\"10.77.0.10\" />'"
        " --parent-index 0 --config"
    ]


def test_moved_dhcp_host_and_new_range_order():
    ips = copy.deepcopy(SAME["ips"])
    ips[0]["dhcp_hosts"] = [dict(mac="52:54:00:00:00:01", name="web", ip="10.77.0.20")]
    ips[0]["dhcp_ranges"] = [dict(start="10.77.0.50", end="10.77.0.60")]
    result = plan(want(ips=ips), RUNNING, autostart=True)
    assert [(s.command, s.section) for s in result.steps] == [
        ("delete", "ip-dhcp-host"),
        ("add-last", "ip-dhcp-range"),
        ("delete", "ip-dhcp-range"),
        ("add-last", "ip-dhcp-host"),
    ]


def test_dns_records_are_live_updates():
    dns = dict(SAME["dns"], hosts=[dict(ip="10.77.0.6", hostnames=["files"])], txt=[dict(name="info", value="v=1")],
               srv=[dict(service="ldap", port=389, target="dc.lab.internal")])
    result = plan(want(dns=dns), RUNNING, autostart=True)
    assert [(s.command, s.section) for s in result.steps] == [
        ("delete", "dns-host"), ("add-last", "dns-host"), ("add-last", "dns-txt"), ("add-last", "dns-srv"),
    ]


def test_forwarders_change_redefines_and_restarts_with_reattach():
    dns = dict(SAME["dns"], forwarders=[dict(domain="corp.example", addr="198.51.100.53"), dict(addr="203.0.113.53")])
    result = plan(want(dns=dns), RUNNING, autostart=True)
    assert [s.action for s in result.steps] == ["define", "destroy", "start", "reattach"]
    assert "<uuid>133be2e6-a171-4185-b8cd-33d153886219</uuid>" in result.steps[0].xml  # same network
    assert '<forwarder domain="corp.example" addr="198.51.100.53" />' in result.steps[0].xml
    assert result.restarted and result.reattached == ("vnet0", "vnet1")
    assert result.steps[-1].bridge == "virbr9"
    assert "restarted" in result.notes[0]


def test_no_restart_when_not_allowed_but_a_note():
    result = plan(want(mtu=9000), RUNNING, autostart=True, restart=False)
    assert [s.action for s in result.steps] == ["define"]
    assert result.restarted is False and "needs a restart" in result.notes[0]


def test_pending_redefinition_is_restarted_later():
    pending = host_state(plan(want(mtu=9000), RUNNING).after_xml, LIVE_XML, active=True, autostart=True, ports=("vnet0",))
    assert [s.action for s in plan(want(mtu=9000), pending, autostart=True, restart=False).steps] == []
    assert [s.action for s in plan(want(mtu=9000), pending, autostart=True).steps] == ["destroy", "start", "reattach"]


def test_dhcp_switched_on_is_not_a_live_update():
    ips = [dict(address="10.77.0.1", prefix=24)]
    assert [s.action for s in plan(want(ips=ips), STOPPED, active=False, autostart=True).steps] == ["define"]


def test_active_and_autostart_switches():
    assert [s.action for s in plan(want(), RUNNING, active=False, autostart=False).steps] == ["destroy", "autostart"]
    assert [s.action for s in plan(want(), STOPPED, active=True, autostart=None).steps] == ["start"]


def test_absent():
    assert [s.action for s in plan(want(), RUNNING, state="absent").steps] == ["destroy", "undefine"]
    assert plan(want(), HostState(), state="absent").steps == ()


# -- the executor's one check-mode guard --------------------------------------------------------
class FakeNetwork:
    def __init__(self, calls):
        self.calls = calls

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name,) + args)


class FakeConn:
    def __init__(self):
        self.calls = []

    def networkDefineXML(self, xml):
        self.calls.append(("define", xml))

    def networkLookupByName(self, name):
        return FakeNetwork(self.calls)


def run_plan(check_mode):
    from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import conn as conn_util
    from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

    dns = dict(SAME["dns"], forwarders=[dict(addr="198.51.100.53")])
    steps = plan(want(dns=dns), RUNNING, autostart=False).steps
    module, conn = FakeModule(check_mode), FakeConn()
    runner = Runner(module)
    conn_util.apply_steps(conn, "qemu:///system", steps, runner)
    return runner.commands, conn.calls, module.ran


def test_check_mode_records_every_step_and_calls_nothing():
    commands, calls, ran = run_plan(check_mode=True)
    assert [c.split("\n")[0] for c in commands] == [
        "virsh net-define /dev/stdin <<'XML'", "virsh net-destroy lab", "virsh net-start lab",
        "ip link set vnet0 master virbr9", "ip link set vnet1 master virbr9", "virsh net-autostart lab --disable",
    ]
    assert calls == [] and ran == []


def test_apply_calls_libvirt_in_plan_order():
    commands, calls, _ran = run_plan(check_mode=False)
    assert [c[0] for c in calls] == ["define", "destroy", "create", "setAutostart"]
    assert calls[-1] == ("setAutostart", 0)
    assert len(commands) == 6


def test_autostart_unset_starts_a_new_network_with_libvirtd_and_leaves_an_existing_one_alone():
    new = plan(want(), HostState())
    assert [s.action for s in new.steps] == ["define", "start", "autostart"] and new.autostart is True
    manual = host_state(CONFIG_XML, LIVE_XML, active=True, autostart=False)
    kept = plan(want(mtu=9000), manual)
    assert "autostart" not in [s.action for s in kept.steps] and kept.autostart is False
    assert plan(want(), manual).steps == ()


def test_dns_lists_left_unset_keep_the_networks_records():
    """dns: {forwarders: [...]} (what diagnose proposes as the REFUSED fix) must not wipe the DNS
    host, TXT and SRV records the network has: only the lists given are the whole list."""
    result = plan(want(dns=dict(forwarders=[dict(addr="198.51.100.53")])), RUNNING, autostart=True)
    assert result.target.dns.hosts == CONFIG.dns.hosts != ()
    assert [f.addr for f in result.target.dns.forwarders] == ["198.51.100.53"]
    assert "<hostname>files</hostname>" in result.after_xml
    cleared = plan(want(dns=dict(forwarders=[dict(addr="198.51.100.53")], hosts=[])), RUNNING, autostart=True)
    assert cleared.target.dns.hosts == ()


def test_dns_switched_off_empties_every_dns_list():
    result = plan(want(dns=dict(enable=False)), RUNNING, autostart=True)
    assert result.target.dns.enable is False
    assert (result.target.dns.forwarders, result.target.dns.hosts, result.target.dns.srvs, result.target.dns.txts) == ((), (), (), ())
