# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lab's part of ``make test``: the bridge_host role, unmodified, converges two fresh
Debian 12 VMs over SSH, one per persistence path, and after a real reboot of both everything it
set is back and the next converge has nothing to do.

- VM ``networkd``: its bridges persisted with systemd-networkd, masquerade and port forward on
  the nftables backend (the collection's nft rules file and boot unit).
- VM ``ifupdown``: its bridges persisted with ifupdown, masquerade and port forward on the
  iptables backend (the collection's restore files and boot unit).
- Both: ip_forward and br_netfilter's ``bridge-nf-call-iptables`` in sysctl.d (the module loaded
  at boot through modules-load.d).

Each VM has the scenario issue 12's reboot findings came from: a VLAN-filtering bridge ``brv``
(its own PVID 10 and an address) with the trunk NIC eth1 (tagged VLANs 10 and 20) and guest
ports on PVIDs 10 and 20 (veths into namespaces, gone at a reboot as a stopped guest's tap is),
and a bridge ``br30`` on the 802.1Q sub-interface eth1.30. The two VMs' eth1 share a plain wire,
so VLAN 10 and VLAN 30 cross from one VM to the other tagged, whichever tool persisted them.

The guest checks, before and after the reboot: the VLAN 10 guest reaches its bridge and, across
the trunk, the other VM's; the VLAN 20 guest reaches neither; br30 reaches the other VM's br30
over VLAN 30; the VLAN 10 guest reaches the upstream masqueraded, and the upstream reaches the
guest through the port forward.

Every other reboot test (each backend alone, NetworkManager, Debian 13, kvm_host's sysctl and
libvirt) runs in ``make test-hosts``.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from hostlab.fixtures import bookworm_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import REPO, UPLINK_NET, HostLab
from hostlab.remote import HOST, RemoteLab
from hostlab.test_host_bridge_reboot import links, vlan_tables

pytestmark = [pytest.mark.hostlab, pytest.mark.hostlab_core]

# per VM: how it persists, its brv and br30 addresses, its guests' addresses
HOSTS = {
    "networkd": {"persist": "networkd", "backend": "nftables", "brv": "10.20.0.1", "br30": "10.30.0.1",
                 "vlan10": "10.20.0.11", "vlan20": "10.20.0.21"},
    "ifupdown": {"persist": "ifupdown", "backend": "iptables", "brv": "10.20.0.2", "br30": "10.30.0.2",
                 "vlan10": "10.20.0.12", "vlan20": "10.20.0.22"},
}
FORWARDED = 8080  # the VMs' port forwarded to their VLAN 10 guest's GUEST_PORT
GUEST_PORT = 7301
UPSTREAM_PORT = 7302
BRIDGE_PORT = 7201
BR30_PORT = 7203


def play():
    """The role with each VM's own persistence, as a user's inventory would give it."""
    role_vars = {
        "bridge_host_bridge_persist": "{{ lab.persist }}",
        "bridge_host_netfilter_backend": "{{ lab.backend }}",
        "bridge_host_bridge_nf_call_iptables": True,
        "bridge_host_bridges": [
            {"name": "brv", "vlan_filtering": True, "pvid": 10, "addresses": ["{{ lab.brv }}/24"],
             "ports": [{"name": "eth1", "vlans": ["10", "20"]}, {"name": "vnet0", "pvid": 10}, {"name": "vnet1", "pvid": 20}]},
            {"name": "br30", "addresses": ["{{ lab.br30 }}/24"], "ports": [{"name": "eth1.30", "vlan_parent": "eth1", "vlan_id": 30}]},
        ],
        "bridge_host_masquerade": [{"source": "10.20.0.0/24", "out_interface": "eth0"}],
        "bridge_host_port_forwards": [{"host_port": FORWARDED, "destination": "{{ lab.vlan10 }}", "destination_port": GUEST_PORT,
                                       "in_interface": "eth0"}],
    }
    return json.dumps([{"hosts": "all", "gather_facts": True, "vars": {"lab_hosts": HOSTS, "lab": "{{ lab_hosts[inventory_hostname] }}"},
                        "roles": [{"role": "hypervisor.network.bridge_host", "vars": role_vars}]}])


def start_guests(remote):
    """The VM's guests (again after a reboot): VLAN 10 on vnet0, routed by brv; VLAN 20 on vnet1."""
    own = HOSTS[remote.vm.name]
    g10, g20 = remote.ns("g10"), remote.ns("g20")
    for guest, port, address in ((g10, "vnet0", own["vlan10"]), (g20, "vnet1", own["vlan20"])):
        remote.veth(HOST, port, guest, "eth0")
        remote.addr(guest, "eth0", address + "/24")
    remote.route(g10, "default", "via", own["brv"])
    remote.serve_tcp(g10, GUEST_PORT)
    return g10, g20


def serve(remote):
    """Services on the VM's bridge addresses (once the bridges have them)."""
    own = HOSTS[remote.vm.name]
    remote.serve_tcp(HOST, BRIDGE_PORT, address=own["brv"])
    remote.serve_tcp(HOST, BR30_PORT, address=own["br30"])


def guest_checks(hostlab, remotes, guests):
    for name, remote in remotes.items():
        own, other = HOSTS[name], HOSTS["ifupdown" if name == "networkd" else "networkd"]
        g10, g20 = guests[name]
        peer = "peer=%s" % own["vlan10"]
        assert remote.connect(g10, own["brv"], BRIDGE_PORT, timeout=5) == peer, name  # VLAN 10 is brv's own
        assert remote.connect(g10, other["brv"], BRIDGE_PORT, timeout=5) == peer, name  # ... and crosses the trunk
        assert remote.connect(g20, own["brv"], BRIDGE_PORT, timeout=2) is None, name  # VLAN 20 is not
        assert remote.connect(g20, other["brv"], BRIDGE_PORT, timeout=2) is None, name
        assert remote.connect(HOST, other["br30"], BR30_PORT, timeout=5) == "peer=%s" % own["br30"], name  # tagged 30 both ways
        address = remote.vm.address
        assert remote.connect(g10, UPLINK_NET + ".1", UPSTREAM_PORT, timeout=5) == "peer=%s" % address, name  # masqueraded
        assert hostlab.connect(address, FORWARDED) == "peer=%s.1" % UPLINK_NET, name  # forwarded in


def changed_items(stdout, host):
    """The loop items a play reported changed on ``host`` ("changed: [host] => (item=brv)")."""
    return re.findall(r"^changed: \[%s\] => \(item=([^)]*)\)" % re.escape(host), stdout, re.M)


def listeners_seen(remote):
    """(sock_diag's, ss's) listeners of the VM as sorted [proto, port] pairs: port_forward's
    listener guard asks the kernel over sock_diag, and on a Debian kernel tcp_diag and udp_diag
    are modules that the first request loads. Where that failed, the guard would fall back to
    /proc/net silently; here it must answer, and answer what ss shows."""
    reader = (REPO / "plugins" / "module_utils" / "_sock_diag.py").read_text() + (
        "\nimport json\nprint(json.dumps(sorted([s.proto, s.port] for s in listening_sockets())))\n")
    kernel = json.loads(remote.sh("python3 -c %s" % shlex.quote(reader)).stdout)
    ss = sorted([line.split()[0], int(line.split()[4].rpartition(":")[2])]
                for line in remote.sh("ss -H -l -n -t -u").stdout.splitlines() if line.strip())
    return kernel, ss


def test_bridge_host_role_converges_two_vms_and_all_survives_a_reboot(bookworm_image):  # noqa: F811
    hostlab = HostLab(bookworm_image)
    try:
        vms = hostlab.boot(*(hostlab.add_vm(name) for name in HOSTS))
        hostlab.ssh(vms[0], "systemctl enable --now systemd-networkd.service")
        hostlab.serve_tcp(UPSTREAM_PORT)
        remotes = dict((vm.name, RemoteLab(hostlab, vm)) for vm in vms)
        guests = dict((name, start_guests(remote)) for name, remote in remotes.items())

        proc, first = hostlab.playbook(play())
        assert all(first[vm.name]["failed"] == 0 and first[vm.name]["changed"] > 0 for vm in vms), first
        proc, second = hostlab.playbook(play())
        assert all(second[vm.name]["changed"] == 0 for vm in vms), proc.stdout[-8000:]
        for remote in remotes.values():
            serve(remote)
        kernel, ss = listeners_seen(remotes["networkd"])
        assert kernel == ss and ["tcp", 22] in kernel and ["tcp", BRIDGE_PORT] in kernel, (kernel, ss)
        guest_checks(hostlab, remotes, guests)
        booted = dict((name, (links(remote), vlan_tables(remote))) for name, remote in remotes.items())
        for name, (_links, tables) in booted.items():  # no default VID 1 anywhere: untagged frames reach no guest
            assert tables["eth1"] == [{"vlan": 10}, {"vlan": 20}] and tables["brv"] == [{"vlan": 10, "flags": ["PVID", "Egress Untagged"]}], name

        hostlab.reboot(*vms)
        remotes = dict((vm.name, RemoteLab(hostlab, vm)) for vm in vms)
        for name, remote in remotes.items():
            assert (links(remote), vlan_tables(remote)) == booted[name], name  # eth1.30 on br30, addresses, VLANs exactly
            sysctl = remote.run(HOST, ["sysctl", "-n", "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"]).stdout.split()
            assert sysctl == ["1", "1"], (name, sysctl)
        # The guests start again. networkd matches their ports by name and enslaves them with
        # their VLANs itself; with ifupdown the bridge task puts them back, and only them.
        guests = dict((name, start_guests(remote)) for name, remote in remotes.items())
        remotes["networkd"].sh("for i in $(seq 60); do networkctl status vnet0 vnet1 | grep -c 'State: .*(configured)' | grep -q 2 "
                               "&& exit 0; sleep 1; done; exit 1")
        for remote in remotes.values():
            serve(remote)
        proc, after = hostlab.playbook(play())
        assert after["networkd"]["changed"] == 0, proc.stdout[-8000:]
        assert after["ifupdown"]["changed"] == 1 and changed_items(proc.stdout, "ifupdown") == ["brv"], proc.stdout[-8000:]
        guest_checks(hostlab, remotes, guests)
    finally:
        hostlab.close()
