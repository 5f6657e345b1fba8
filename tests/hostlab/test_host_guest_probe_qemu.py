# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_probe from a QEMU guest (issue #13): a Debian 12 VM of the host lab whose second NIC is
on the bridge of a libvirt network, a real libvirtd and dnsmasq in a test namespace whose host's
first nameserver answers REFUSED for public names.

The VM gets its lease from libvirt's dnsmasq (systemd-networkd's DHCP client: address, router,
DNS), and guest_probe runs in it over SSH as users run it, asking its default gateway (the
lease's router) with the lease's DNS server in the resolv.conf it reads. Before the fix the
cookie style (dig, BIND tools, resolvers that send cookies) gets REFUSED; after libvirt_network
applies diagnose's fix (per-domain forwarders) every style is answered.

Layout: the host lab's trunk bridge (the VM's eth1) and the libvirt network's bridge are joined by
a veth pair, so the VM's eth1 is a port of the network's segment; the VM keeps its management
NIC (eth0, SSH and default route) on the host lab's upstream bridge.
"""

from __future__ import annotations

import time

import pytest

from hostlab.fixtures import bookworm_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import UPLINK_NET, HostLab
from hostlab.remote import HOST, RemoteLab
from libvirt_lab import PUBLIC_NAME, REFUSING_RESOLV_CONF, fix_refusing_nameserver, libvirt_host, wait_dns_ready
from netlab import Lab

pytestmark = pytest.mark.hostlab

GATEWAY = "10.79.1.1"
NETWORK = dict(name="qguest", bridge=dict(name="virbr79"),
               ips=[dict(address=GATEWAY, prefix=24, dhcp_ranges=[dict(start="10.79.1.100", end="10.79.1.150")])])
NETWORKD_ETH1 = "[Match]\nName=eth1\n\n[Network]\nDHCP=ipv4\n\n[DHCPv4]\nUseHostname=false\n"


def lease(hostlab, vm, timeout=120):
    """systemd-networkd's DHCP lease of eth1 in the VM: {ADDRESS, DNS, SERVER_ADDRESS, ...}."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = hostlab.ssh(vm, "cat /run/systemd/netif/leases/$(cat /sys/class/net/eth1/ifindex)", check=False).stdout
        fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith("#"))
        if fields.get("ADDRESS") and fields.get("DNS"):
            return fields
        time.sleep(2)
    raise AssertionError("the VM got no lease on eth1; networkctl:\n%s" % hostlab.ssh(vm, "networkctl status eth1", check=False).stdout)


def by_style(probe):
    return {f["subject"].split("(")[-1].split()[0]: f for f in probe["findings"] if f["check"] == "guest_dns"}


def test_guest_probe_in_a_qemu_guest_sees_refused_first_then_ok_after_the_fix(bookworm_image):  # noqa: F811
    lab = Lab(tag="gpq")
    hostlab = HostLab(bookworm_image)
    try:
        # answers with a TTL, so that dnsmasq caches them as on a real host
        with libvirt_host(lab, upstream_ttl=300, resolv_conf=REFUSING_RESOLV_CONF) as (host, _upstream):
            host.module("libvirt_network", NETWORK)
            hostlab.run(["ip", "link", "add", "hlqv0", "type", "veth", "peer", "name", "qport0", "netns", host.ns])
            hostlab.run(["ip", "link", "set", "hlqv0", "master", "hltrk", "up"])
            lab.run(host.ns, ["ip", "link", "set", "qport0", "master", "virbr79", "up"])
            wait_dns_ready(lab, host.ns, GATEWAY)  # asked from the hypervisor's own namespace

            vm = hostlab.start(hostlab.add_vm())
            hostlab.ssh(vm, "printf '%s' > /etc/systemd/network/50-eth1.network && systemctl restart systemd-networkd"
                        % NETWORKD_ETH1.replace("\n", "\\n"))
            got = lease(hostlab, vm)
            assert got["ADDRESS"].startswith("10.79.1.") and got["DNS"] == GATEWAY, got
            # the guest's default route is the lease's router, as on a guest with one NIC; SSH keeps
            # working over the management NIC's own subnet
            hostlab.ssh(vm, "ip route del default via %s.1 dev eth0" % UPLINK_NET)
            assert hostlab.ssh(vm, "ip -4 route show default").stdout.split()[:3] == ["default", "via", GATEWAY]
            remote = RemoteLab(hostlab, vm)
            resolv = "%s/lease-resolv.conf" % remote.tmp
            remote.sh("echo 'nameserver %s' > %s" % (got["DNS"], resolv))  # the resolver the lease gives
            probe = {"names": [PUBLIC_NAME], "count": 6, "timeout": 1.0, "resolv_conf": resolv}

            before = remote.module(HOST, "guest_probe", probe)
            styles = by_style(before)
            assert before["gateway"] == GATEWAY and before["server"] == GATEWAY, before
            assert styles["cookie"]["status"] == "fail", before["dns"]
            assert before["dns"]["styles"]["cookie"]["rcodes"].get("REFUSED", 0) >= 5, before["dns"]
            assert styles["plain"]["status"] == "ok", styles  # glibc-style clients are retried: they hide it
            assert before["summary"]["fail"] >= 1

            fix_refusing_nameserver(lab, host, NETWORK, host.ns)
            assert "qport0" in host.bridge_ports("virbr79"), "the VM's link fell off the bridge"

            after = remote.module(HOST, "guest_probe", dict(probe, styles=["plain", "edns", "cookie"]))
            assert {s: f["status"] for s, f in by_style(after).items()} == {"cookie": "ok", "edns": "ok", "plain": "ok"}, after["dns"]
            assert after["dns"]["success_rate"] == 1.0 and after["summary"]["fail"] == 0, after["findings"]
    finally:
        hostlab.close()
        lab.close()
