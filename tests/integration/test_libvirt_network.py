"""libvirt_network against a real libvirtd and dnsmasq in a test namespace, guests as namespaces.

One libvirtd serves the whole file (starting one takes seconds); every test uses its own network
name, bridge and subnet, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import pytest

from libvirt_lab import (
    PRIVATE_ADDR,
    PRIVATE_DNS,
    PRIVATE_NAME,
    PUBLIC_ADDR,
    PUBLIC_DNS,
    PUBLIC_NAME,
    REFUSING_RESOLV_CONF,
    attach_guest_ns,
    dhcp_lease,
    dig,
    libvirt_host,
    ping,
)
from netlab import Lab

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hv():
    lab = Lab(tag="lvn")
    try:
        with libvirt_host(lab, resolv_conf=REFUSING_RESOLV_CONF) as (host, _upstream):
            yield host
    finally:
        lab.close()


def nat_network(name, bridge, third, **extra):
    args = dict(
        name=name,
        bridge=dict(name=bridge),
        ips=[dict(address="10.77.%d.1" % third, prefix=24,
                  dhcp_ranges=[dict(start="10.77.%d.100" % third, end="10.77.%d.150" % third, lease_expiry=1, lease_unit="hours")])],
    )
    args.update(extra)
    return args


def dnsmasq_pid(hv, name):
    return (hv.run_dir / "libvirt" / "network" / ("%s.pid" % name)).read_text().strip()


def test_refused_upstream_then_forwarders_fix_it_and_guests_stay_connected(hv):
    lab, gateway = hv.lab, "10.77.1.1"
    args = nat_network("dnsfix", "virbr71", 1)
    created = hv.module("libvirt_network", args)
    assert created["changed"] and not created["restarted"]
    guests = [attach_guest_ns(lab, hv, "virbr71", "g%d" % i, "gport%d" % i) for i in range(2)]
    leases = [dhcp_lease(lab, guest) for guest in guests]
    for guest, lease in zip(guests, leases):
        assert lease["ip"].startswith("10.77.1.") and lease["router"] == gateway
        assert ping(lab, guest, gateway)
    # the baseline from the field: the first host nameserver refuses, so guests get REFUSED
    assert dig(lab, guests[0], gateway, PRIVATE_NAME) == ("NOERROR", [PRIVATE_ADDR])
    assert dig(lab, guests[0], gateway, PUBLIC_NAME)[0] == "REFUSED"

    args["dns"] = dict(forwarders=[dict(domain="corp.example", addr=PRIVATE_DNS), dict(addr=PUBLIC_DNS)])
    fixed = hv.module("libvirt_network", args, diff=True)
    assert fixed["changed"] and fixed["restarted"]
    assert fixed["reattached"] == ["gport0", "gport1"]
    assert '<forwarder domain="corp.example" addr="198.51.100.53" />' in fixed["diff"]["after"]
    assert "forwarder" not in fixed["diff"]["before"]
    assert hv.bridge_ports("virbr71") == ["gport0", "gport1"]
    for guest in guests:  # still connected with the lease they had, no new DHCP
        assert ping(lab, guest, gateway)
        assert dig(lab, guest, gateway, PRIVATE_NAME) == ("NOERROR", [PRIVATE_ADDR])
        assert dig(lab, guest, gateway, PUBLIC_NAME) == ("NOERROR", [PUBLIC_ADDR])

    again = hv.module("libvirt_network", args)
    assert not again["changed"] and again["commands"] == []


def test_dhcp_host_added_live_without_restart(hv):
    lab = hv.lab
    args = nat_network("fixed", "virbr72", 2)
    hv.module("libvirt_network", args)
    bystander = attach_guest_ns(lab, hv, "virbr72", "by", "byport")
    assert ping(lab, bystander, dhcp_lease(lab, bystander)["router"])
    pid_before = dnsmasq_pid(hv, "fixed")

    newcomer = attach_guest_ns(lab, hv, "virbr72", "nc", "ncport")
    lab.run(newcomer, ["ip", "link", "set", "eth0", "address", "52:54:00:77:02:20"])
    args["ips"][0]["dhcp_hosts"] = [dict(mac="52:54:00:77:02:20", name="newcomer", ip="10.77.2.20")]
    added = hv.module("libvirt_network", args)
    assert added["changed"] and not added["restarted"] and added["reattached"] == []
    assert added["commands"] == [
        "virsh net-update fixed add-last ip-dhcp-host '<host mac=\"52:54:00:77:02:20\" name=\"newcomer\" ip=\"10.77.2.20\" />'"
        " --parent-index 0 --live --config"
    ]
    assert dhcp_lease(lab, newcomer)["ip"] == "10.77.2.20"
    assert dnsmasq_pid(hv, "fixed") == pid_before  # dnsmasq was told, not restarted
    assert hv.bridge_ports("virbr72") == ["byport", "ncport"]
    assert "10.77.2.20" in hv.virsh(["net-dumpxml", "--inactive", "fixed"]).stdout  # persistent too
    assert not hv.module("libvirt_network", args)["changed"]


def test_check_mode_touches_nothing_and_diff_shows_xml(hv):
    args = nat_network("checked", "virbr73", 3, dnsmasq_options=["edns-packet-max=4096"])
    planned = hv.module("libvirt_network", args, check_mode=True, diff=True)
    assert planned["changed"] and planned["commands"][0].startswith("virsh net-define")
    assert planned["diff"]["before"] == "" and "edns-packet-max=4096" in planned["diff"]["after"]
    assert hv.virsh(["net-info", "checked"], check=False).returncode != 0  # not defined

    hv.module("libvirt_network", args)
    xml_before, pid_before = hv.virsh(["net-dumpxml", "checked"]).stdout, dnsmasq_pid(hv, "checked")
    assert "edns-packet-max=4096" in hv.run(["cat", "/var/lib/libvirt/dnsmasq/checked.conf"]).stdout
    for change in (dict(mtu=1400), dict(state="absent"), dict(active=False)):
        result = hv.module("libvirt_network", dict(args, **change), check_mode=True, diff=True)
        assert result["changed"], change
    assert hv.virsh(["net-dumpxml", "checked"]).stdout == xml_before
    assert dnsmasq_pid(hv, "checked") == pid_before

    gone = hv.module("libvirt_network", dict(args, state="absent"))
    assert gone["commands"] == ["virsh net-destroy checked", "virsh net-undefine checked"]
    assert hv.virsh(["net-info", "checked"], check=False).returncode != 0
    assert not hv.module("libvirt_network", dict(args, state="absent"))["changed"]


def test_no_restart_leaves_a_pending_note_then_restart_applies_it(hv):
    args = nat_network("pending", "virbr74", 4)
    hv.module("libvirt_network", args)
    deferred = hv.module("libvirt_network", dict(args, mtu=1400, restart=False))
    assert deferred["changed"] and not deferred["restarted"] and "needs a restart" in deferred["notes"][0]
    assert "mtu" not in hv.virsh(["net-dumpxml", "pending"]).stdout
    assert not hv.module("libvirt_network", dict(args, mtu=1400, restart=False))["changed"]
    applied = hv.module("libvirt_network", dict(args, mtu=1400))
    assert applied["restarted"] and applied["commands"] == ["virsh net-destroy pending", "virsh net-start pending"]
    assert "<mtu size='1400'/>" in hv.virsh(["net-dumpxml", "pending"]).stdout


def test_dns_records_and_dhcp_ranges_change_live(hv):
    args = nat_network("records", "virbr77", 7, domain="records.internal")
    hv.module("libvirt_network", args)
    args["dns"] = dict(
        hosts=[dict(ip="10.77.7.5", hostnames=["files"])],
        txt=[dict(name="info", value="v=hypervisor")],
        srv=[dict(service="ldap", protocol="tcp", domain="records.internal", target="files.records.internal", port=389,
                  priority=10, weight=5)],
    )
    args["ips"][0]["dhcp_ranges"].append(dict(start="10.77.7.200", end="10.77.7.210"))
    updated = hv.module("libvirt_network", args)
    assert not updated["restarted"]
    assert [c.split()[4] for c in updated["commands"]] == ["ip-dhcp-range", "dns-host", "dns-txt", "dns-srv"]

    def answer(name, rtype):
        out = hv.lab.run(hv.ns, ["dig", "@10.77.7.1", name, rtype, "+short", "+time=2", "+tries=2"]).stdout
        return out.strip()

    assert answer("files", "A") == "10.77.7.5"
    assert answer("info", "TXT") == '"v=hypervisor"'
    assert answer("_ldap._tcp.records.internal", "SRV") == "10 5 389 files.records.internal."
    assert "10.77.7.200,10.77.7.210" in hv.run(["cat", "/var/lib/libvirt/dnsmasq/records.conf"]).stdout
    assert not hv.module("libvirt_network", args)["changed"]

    del args["ips"][0]["dhcp_ranges"][0]
    args["dns"]["txt"] = []
    removed = hv.module("libvirt_network", args)
    assert [c.split()[3:5] for c in removed["commands"]] == [["delete", "ip-dhcp-range"], ["delete", "dns-txt"]]
    assert answer("info", "TXT") == "" and not removed["restarted"]
    assert "10.77.7.100" not in hv.virsh(["net-dumpxml", "--inactive", "records"]).stdout


@pytest.mark.parametrize("forward", [
    dict(mode="route"), dict(mode="open"), dict(mode="isolated"),
    dict(mode="nat", nat_address_start="198.51.100.1", nat_address_end="198.51.100.1", nat_port_start=20000, nat_port_end=29999),
])
def test_forward_modes_define_and_stay_idempotent(hv, forward):
    args = nat_network("fwd-" + forward["mode"], "virbr78", 8, forward=forward)
    assert hv.module("libvirt_network", args)["changed"]
    assert not hv.module("libvirt_network", args)["changed"]
    xml = hv.virsh(["net-dumpxml", args["name"]]).stdout
    if forward["mode"] == "isolated":
        assert "<forward" not in xml
    else:
        assert "<forward mode='%s'" % forward["mode"] in xml
    if "nat_port_start" in forward:
        assert "<address start='198.51.100.1' end='198.51.100.1'/>" in xml and "<port start='20000' end='29999'/>" in xml
    hv.module("libvirt_network", dict(args, state="absent"))


def test_dual_stack_network_is_idempotent(hv):
    args = nat_network("dual", "virbr79", 9)
    args["ips"].append(dict(address="fd00:77:9::1", prefix=64,
                            dhcp_ranges=[dict(start="fd00:77:9::100", end="fd00:77:9::1ff")],
                            dhcp_hosts=[dict(name="v6host", ip="fd00:77:9::10")]))
    created = hv.module("libvirt_network", args)
    assert created["changed"] and created["after"]["ips"][1]["dhcp_hosts"][0]["name"] == "v6host"
    assert not hv.module("libvirt_network", args)["changed"]
    assert "fd00:77:9::1" in hv.lab.run(hv.ns, ["ip", "-6", "addr", "show", "virbr79"]).stdout
    args["ips"][1]["dhcp_hosts"].append(dict(name="v6other", ip="fd00:77:9::11"))
    updated = hv.module("libvirt_network", args)
    assert updated["commands"] == [
        "virsh net-update dual add-last ip-dhcp-host '<host name=\"v6other\" ip=\"fd00:77:9::11\" />' --parent-index 1 --live --config"
    ]
    hv.module("libvirt_network", dict(args, state="absent"))


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(forward=dict(mode="tunnel")), "mode"),
        (dict(bridge=dict(name="virbr-name-too-long")), "bridge.name"),
        (dict(ips=[dict(address="10.77.5.1", dhcp_ranges=[dict(start="10.77.6.10", end="10.77.6.20")])]), "ips[0].dhcp_ranges[0].start"),
        (dict(ips=[dict(address="10.77.5.1", dhcp_ranges=[dict(start="10.77.5.90", end="10.77.5.10")])]), "ips[0].dhcp_ranges[0]"),
        (dict(ips=[dict(address="10.77.5.1", dhcp_hosts=[dict(mac="52:54:00:00:00:01", ip="10.77.5.9"),
                                                         dict(mac="52:54:00:00:00:01", ip="10.77.5.8")])]), "ips[0].dhcp_hosts[1].mac"),
        (dict(dns=dict(forwarders=[dict(domain="bad domain", addr=PUBLIC_DNS)])), "dns.forwarders[0].domain"),
        (dict(dnsmasq_options=["cache-size=0\ndhcp-script=/tmp/evil"]), "dnsmasq_options[0]"),
    ],
)
def test_bad_input_is_refused_before_anything_changes(hv, change, field):
    result = hv.module("libvirt_network", dict(nat_network("refused", "virbr75", 5), **change), expect_fail=True)
    assert field in result["msg"]
    assert hv.virsh(["net-info", "refused"], check=False).returncode != 0


def test_unreachable_libvirtd_says_uri_and_how_to_start(hv):
    uri = "qemu:///system?socket=/run/libvirt/nothing-here"
    result = hv.module("libvirt_network", dict(nat_network("x", "virbr76", 6), uri=uri), expect_fail=True)
    assert uri in result["msg"] and "libvirtd -d" in result["msg"]


def test_the_documented_examples_run(hv):
    import yaml

    from ansible_collections.hypervisor.network.plugins.modules import libvirt_interface, libvirt_network

    hv.lab.run(hv.ns, ["ip", "link", "add", "br0", "type", "bridge"])  # the host bridge of the bridge example
    for task in yaml.safe_load(libvirt_network.EXAMPLES):
        result = hv.module("libvirt_network", task["hypervisor.network.libvirt_network"])
        assert result["changed"], task["name"]
    assert hv.virsh(["net-info", "lab"], check=False).returncode != 0  # the last example removed it
    assert "<forward mode='bridge'/>" in hv.virsh(["net-dumpxml", "lan"]).stdout

    hv.virsh(["define", "/dev/stdin"], input=(
        "<domain type='qemu'><name>web1</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>"
        "<devices><interface type='network'><source network='lan'/></interface></devices></domain>"))
    tasks = [t for t in yaml.safe_load(libvirt_interface.EXAMPLES) if "hypervisor.network.libvirt_interface" in t]
    for task in tasks:
        args = dict(task["hypervisor.network.libvirt_interface"], network="lan")
        assert hv.module("libvirt_interface", args)["changed"]
    hv.virsh(["undefine", "web1"])
