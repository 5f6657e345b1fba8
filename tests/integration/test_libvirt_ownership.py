"""libvirt_network changes only what it owns, on a real libvirtd.

A network carrying what the module does not model (nat ipv6, a NAT port range, bandwidth, localPtr,
tftp, bootp, a route, portgroups, virtualport) keeps all of it through a redefine and restart, and
through a live update; a change that would drop such a part is refused, naming it. autostart left
unset leaves an existing network's setting alone.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from libvirt_lab import PRIVATE_DNS, PUBLIC_DNS, holding_host_lock, libvirt_host
from netlab import Lab

pytestmark = pytest.mark.slow

KEEP = """<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
  <name>keep</name>
  <forward mode='nat' dev='uplink'>
    <nat ipv6='yes'><address start='198.51.100.1' end='198.51.100.1'/><port start='20000' end='29999'/></nat>
  </forward>
  <bridge name='virbr61' stp='on' delay='0'/>
  <mtu size='1400'/>
  <mac address='52:54:00:61:00:01'/>
  <domain name='keep.internal' localOnly='yes'/>
  <dns forwardPlainNames='no'>
    <forwarder domain='corp.example' addr='198.51.100.53'/>
    <forwarder domain='local.lan'/>
    <txt name='info' value='x'/>
    <host ip='10.61.0.5'><hostname>files</hostname></host>
  </dns>
  <ip address='10.61.0.1' prefix='24' localPtr='yes'>
    <tftp root='/var/lib/libvirt'/>
    <dhcp>
      <range start='10.61.0.100' end='10.61.0.150'><lease expiry='1' unit='hours'/></range>
      <host mac='52:54:00:61:00:10' name='web' ip='10.61.0.10'/>
      <bootp file='pxelinux.0' server='10.61.0.2'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='fd00:61::1' prefix='64'/>
  <route address='192.0.2.0' prefix='24' gateway='10.61.0.2'/>
  <portgroup name='engineering' default='yes'><bandwidth><inbound average='100'/></bandwidth></portgroup>
  <dnsmasq:options><dnsmasq:option value='edns-packet-max=4096'/></dnsmasq:options>
</network>
"""

# Network-wide bandwidth needs the sfq qdisc, which this kernel lacks: that network stays stopped.
SHAPED = """<network>
  <name>shaped</name>
  <forward mode='route'/>
  <bridge name='virbr64'/>
  <bandwidth><inbound average='1000' peak='5000' burst='1024'/><outbound average='2000'/></bandwidth>
  <ip address='10.64.0.1' prefix='24'/>
</network>
"""

OVS = """<network>
  <name>ovs</name>
  <forward mode='bridge'/>
  <bridge name='ovsbr0'/>
  <virtualport type='openvswitch'><parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>
  <portgroup name='vlan-10'><vlan><tag id='10'/></vlan></portgroup>
  <portgroup name='trunk' default='yes'><vlan trunk='yes'><tag id='10'/><tag id='20'/></vlan></portgroup>
</network>
"""

# The options that describe KEEP's owned DHCP and DNS records as they are.
KEEP_IPS = [
    dict(address="10.61.0.1", prefix=24,
         dhcp_ranges=[dict(start="10.61.0.100", end="10.61.0.150", lease_expiry=1, lease_unit="hours")],
         dhcp_hosts=[dict(mac="52:54:00:61:00:10", name="web", ip="10.61.0.10")]),
    dict(address="fd00:61::1", prefix=64),
]
KEEP_DNS_RECORDS = dict(txt=[dict(name="info", value="x")], hosts=[dict(ip="10.61.0.5", hostnames=["files"])])


@pytest.fixture(scope="module")
def hv():
    lab = Lab(tag="own")
    try:
        with libvirt_host(lab) as (host, _upstream):
            host.virsh(["net-define", "/dev/stdin"], input=KEEP)
            host.virsh(["net-start", "keep"])
            yield host
    finally:
        lab.close()


def without(xml, parts=()):
    """Canonical XML minus ``parts`` ((parent path, child tag or @attribute)): two definitions that
    differ only in those parts compare equal."""
    root = ET.fromstring(xml)
    for parent_path, what in parts:
        for parent in [root] if parent_path == "." else root.findall(parent_path):
            if what.startswith("@"):
                parent.attrib.pop(what[1:], None)
            else:
                for child in parent.findall(what):
                    parent.remove(child)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


def inactive(hv, name):
    return hv.virsh(["net-dumpxml", "--inactive", name]).stdout


def test_redefine_and_restart_keep_everything_the_module_does_not_own(hv):
    before = inactive(hv, "keep")
    forwarders = [dict(domain="corp.example", addr=PRIVATE_DNS), dict(addr=PUBLIC_DNS), dict(domain="local.lan")]
    args = dict(name="keep", mtu=1500, ips=KEEP_IPS, dns=dict(forwarders=forwarders, **KEEP_DNS_RECORDS))
    result = hv.module("libvirt_network", args, diff=True)
    assert result["changed"] and result["restarted"]
    after = inactive(hv, "keep")
    owned = [(".", "mtu"), ("dns", "forwarder")]
    assert without(after, owned) == without(before, owned)
    root = ET.fromstring(after)
    assert root.find("mtu").get("size") == "1500"
    assert [(f.get("domain"), f.get("addr")) for f in root.findall("dns/forwarder")] == [
        ("corp.example", PRIVATE_DNS), (None, PUBLIC_DNS), ("local.lan", None)]
    # --diff shows the whole real definition on both sides, not the model's rendering
    assert without(result["diff"]["before"]) == without(before)
    assert without(result["diff"]["after"], owned) == without(after, owned)
    assert "portgroup" in hv.virsh(["net-dumpxml", "keep"]).stdout  # the restarted network runs it
    assert not hv.module("libvirt_network", args)["changed"]

    # a live update (one more DHCP host) leaves the rest alone as well
    ips = [dict(KEEP_IPS[0], dhcp_hosts=KEEP_IPS[0]["dhcp_hosts"] + [dict(mac="52:54:00:61:00:11", name="db", ip="10.61.0.11")]),
           KEEP_IPS[1]]
    live = hv.module("libvirt_network", dict(args, ips=ips))
    assert not live["restarted"] and [c.split()[1:5] for c in live["commands"]] == [["net-update", "keep", "add-last", "ip-dhcp-host"]]
    assert without(inactive(hv, "keep"), [("ip/dhcp", "host")]) == without(after, [("ip/dhcp", "host")])


@pytest.mark.parametrize("xml, change, owned", [
    (OVS, dict(forward=dict(mode="bridge"), bridge=dict(name="ovsbr1")), [("bridge", "@name")]),
    (SHAPED, dict(mtu=1450, domain="shaped.internal"), [(".", "mtu"), (".", "domain")]),
], ids=["ovs-virtualport-portgroups", "bandwidth"])
def test_stopped_networks_keep_what_the_module_does_not_own(hv, xml, change, owned):
    name = xml.split("<name>")[1].split("<")[0]
    hv.virsh(["net-define", "/dev/stdin"], input=xml)
    before = inactive(hv, name)
    result = hv.module("libvirt_network", dict(change, name=name, active=False, autostart=False))
    after = inactive(hv, name)
    assert without(after, owned) == without(before, owned) and after != before
    assert result["changed"] and [c.split()[1] for c in result["commands"]] == ["net-define"]
    assert not hv.module("libvirt_network", dict(change, name=name, active=False, autostart=False))["changed"]
    hv.virsh(["net-undefine", name])


def test_a_change_that_would_drop_nat_ipv6_is_refused_and_nothing_changes(hv):
    before = inactive(hv, "keep")
    result = hv.module("libvirt_network", dict(name="keep", forward=dict(mode="route")), expect_fail=True)
    assert "ipv6='yes'" in result["msg"] and "virsh net-edit keep" in result["msg"]
    assert inactive(hv, "keep") == before


def test_autostart_left_unset_is_kept_for_an_existing_network_and_on_for_a_new_one(hv):
    args = dict(name="auto", bridge=dict(name="virbr63"), ips=[dict(address="10.63.0.1", prefix=24)])
    created = hv.module("libvirt_network", args)
    assert created["after"]["autostart"] is True and "virsh net-autostart auto" in created["commands"]
    assert "yes" in hv.virsh(["net-info", "auto"]).stdout.split("Autostart:")[1].split("\n")[0]
    hv.virsh(["net-autostart", "auto", "--disable"])
    changed = hv.module("libvirt_network", dict(args, mtu=1400))
    assert changed["changed"] and not any("autostart" in c for c in changed["commands"])
    assert changed["after"]["autostart"] is False
    assert "no" in hv.virsh(["net-info", "auto"]).stdout.split("Autostart:")[1].split("\n")[0]
    hv.module("libvirt_network", dict(args, state="absent"))


def test_network_reads_under_the_lock_so_a_portgroup_added_meanwhile_survives(hv):
    """Another writer adds a portgroup while the module waits for the host lock; the module's
    redefine must start from the definition as it is after that, not from a copy read before."""
    args = dict(name="locknet", bridge=dict(name="virbr66"), ips=[dict(address="10.66.0.1", prefix=24)], active=False)
    hv.module("libvirt_network", args)
    with ThreadPoolExecutor(1) as pool:
        with holding_host_lock(hv) as wait_for_waiter:
            future = pool.submit(hv.module, "libvirt_network", dict(args, mtu=1400))
            wait_for_waiter(future)
            hv.virsh(["net-update", "locknet", "add-last", "portgroup", "<portgroup name='late'/>", "--config"])
        assert future.result(timeout=120)["changed"]
    root = ET.fromstring(inactive(hv, "locknet"))
    assert root.find("mtu").get("size") == "1400" and root.find("portgroup").get("name") == "late"
    hv.module("libvirt_network", dict(args, state="absent"))
