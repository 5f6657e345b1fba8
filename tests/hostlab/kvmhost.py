# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kvm_host role on a lab VM: its variables, and the checks a guest on its libvirt network makes
from inside the VM. Shared by tests/hostlab/test_host_kvm_host_role.py and the Molecule scenario
on VMs (extensions/molecule/kvm_host_vm, through labctl.py).

The network is the sandbox's "lab" network (playbooks/inventory/sandbox/group_vars/kvm_hosts.yml):
NAT, a fixed lease for the guest's MAC, per-domain DNS forwarders to the lab upstream (whose first
server answers REFUSED for public names), and a port forward from the VM's uplink to the guest.
The guest is a network namespace inside the VM, cabled by a veth to the network's bridge, as a
stopped-and-started guest's tap would be: it asks for a DHCP lease (dhclient, from the lab's
package repository), pings the gateway, resolves a private and a public name through libvirt's
dnsmasq, reaches the upstream HTTP service (which must see the VM's address: NAT), and serves a
port that the upstream reaches through the VM's forwarded port.
"""

from __future__ import annotations

import shlex

from hostlab.lab import HTTP_ADDR, PRIVATE_ADDR, PRIVATE_DNS, PRIVATE_NAME, PRIVATE_ZONE, PUBLIC_DNS, PUBLIC_NAME, UPLINK_NET

BRIDGE = "virbr10"
GATEWAY = "10.10.0.1"
GUEST_MAC = "52:54:00:0a:00:0a"
GUEST_IP = "10.10.0.10"
GUEST_PORT = 80
FORWARDED_PORT = 8080
GUEST_NS = "hlguest"
# The guest's files in the VM: dhclient's script (-sf), its lease and pid files. Not under /run:
# Debian's initramfs mounts /run noexec, so dhclient could not exec its script there; it got the
# lease (dnsmasq logged the ACK) but never configured it ("execve (...): Permission denied"; seen
# on Debian 12 and 13 VMs).
GUEST_WORK = "/var/lib/%s" % GUEST_NS

ROLE_VARS = {
    "kvm_host_networks": [{
        "name": "lab",
        "bridge": {"name": BRIDGE, "stp": False, "delay": 0},
        "domain": "lab.internal",
        "ips": [{"address": GATEWAY, "prefix": 24,
                 "dhcp_ranges": [{"start": "10.10.0.100", "end": "10.10.0.199"}],
                 "dhcp_hosts": [{"mac": GUEST_MAC, "name": "g1", "ip": GUEST_IP}]}],
        "dns": {"forwarders": [{"domain": PRIVATE_ZONE, "addr": PRIVATE_DNS}, {"addr": PUBLIC_DNS}]},
    }],
    "kvm_host_port_forwards": [{"host_port": str(FORWARDED_PORT), "destination": GUEST_IP,
                                "destination_port": str(GUEST_PORT), "in_interface": "eth0", "comment": "hostlab guest"}],
}

# dhclient's script (-sf): configure the lease and write it down for the checks.
DHCLIENT_SCRIPT = """#!/bin/sh
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    for r in $new_routers; do ip route replace default via "$r"; break; done
    set -- $new_domain_name_servers
    echo "ip=$new_ip_address router=$new_routers dns=$1" > "$(dirname "$0")/lease"
    ;;
esac
"""

# One DNS query over UDP (the VM's python3; no DNS tools to install): "rcode=N addr addr...".
DNS_QUERY = r"""
import random, socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
query = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(query, (server, 53))
data = s.recv(4096)
flags, qdcount, ancount = struct.unpack(">HHH", data[2:8])
pos = 12
def skip_name(pos):
    while data[pos]:
        if data[pos] & 0xC0 == 0xC0:
            return pos + 2
        pos += data[pos] + 1
    return pos + 1
for _ in range(qdcount):
    pos = skip_name(pos) + 4
addrs = []
for _ in range(ancount):
    pos = skip_name(pos)
    rtype, _cls, _ttl, length = struct.unpack(">HHIH", data[pos:pos + 10])
    pos += 10
    if rtype == 1:
        addrs.append(socket.inet_ntoa(data[pos:pos + 4]))
    pos += length
print("rcode=%d %s" % (flags & 15, " ".join(addrs)))
"""

HTTP_GET = "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode().strip())"

SERVE = (
    "import socket,sys\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen(16)\n"
    "while True:\n"
    "    c,a=s.accept();c.sendall(('peer=%s\\n'%a[0]).encode());c.close()\n"
)


def _q(*argv):
    return " ".join(shlex.quote(str(a)) for a in argv)


def _in_guest(*argv):
    return "ip netns exec %s %s" % (GUEST_NS, _q(*argv))


def _retry(command, tries=10):
    return "i=0; until %s; do i=$((i+1)); [ $i -ge %d ] && exit 1; sleep 1; done" % (command, tries)


def install_tools(hostlab, vm):
    """The guest's DHCP client, from the lab's package repository (serve_packages first)."""
    hostlab.ssh(vm, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q isc-dhcp-client >/dev/null", timeout=900)


def plug_guest(hostlab, vm):
    """(Re)create the guest namespace in the VM, its eth0 (the fixed lease's MAC) cabled to the
    network's bridge, and its service on GUEST_PORT."""
    work = GUEST_WORK
    script = " && ".join([
        "ip netns pids %s 2>/dev/null | xargs -r kill -9; ip netns del %s 2>/dev/null; ip link del hlg0 2>/dev/null; true" % (GUEST_NS, GUEST_NS),
        "rm -rf %s && mkdir -p %s" % (work, work),
        "ip netns add %s" % GUEST_NS,
        "ip -n %s link set lo up" % GUEST_NS,
        "ip link add hlg0 type veth peer name hlg0p",
        "ip link set hlg0p netns %s name eth0" % GUEST_NS,
        "ip -n %s link set eth0 address %s up" % (GUEST_NS, GUEST_MAC),
        "ip link set hlg0 master %s up" % BRIDGE,
        "cat > %s/dhclient.sh && chmod 755 %s/dhclient.sh" % (work, work),
        "(%s </dev/null >/dev/null 2>&1 &)" % _in_guest("python3", "-c", SERVE, GUEST_PORT),
    ])
    hostlab.run(hostlab.ssh_argv(vm, script), input=DHCLIENT_SCRIPT)


def unplug_guest(hostlab, vm):
    hostlab.ssh(vm, "ip netns pids %s 2>/dev/null | xargs -r kill -9; ip netns del %s 2>/dev/null; ip link del hlg0 2>/dev/null; rm -rf %s; true"
                % (GUEST_NS, GUEST_NS, GUEST_WORK), check=False)


def guest_checks(hostlab, vm):
    """Run the checks; {name: (ok, detail)} for dhcp, ping_gateway, dns_private, dns_public,
    nat_out and forward_in. The guest must be plugged (plug_guest)."""
    work = GUEST_WORK
    results = {}

    def ssh(command, timeout=120):
        proc = hostlab.ssh(vm, command, check=False, timeout=timeout)
        return proc.returncode == 0, (proc.stdout + proc.stderr).strip()

    dhclient = _in_guest("dhclient", "-1", "-4", "-v", "-sf", work + "/dhclient.sh", "-lf", work + "/leases", "-pf", work + "/dhclient.pid", "eth0")
    ok, detail = ssh("rm -f %s/lease; timeout 90 %s 2>&1 | tail -n 3; kill $(cat %s/dhclient.pid 2>/dev/null) 2>/dev/null; cat %s/lease"
                     % (work, dhclient, work, work), timeout=150)
    lease = dict(item.split("=", 1) for item in detail.splitlines()[-1].split() if "=" in item) if ok else {}
    results["dhcp"] = (lease.get("ip") == GUEST_IP and lease.get("router") == GATEWAY and lease.get("dns") == GATEWAY, detail[-300:])
    results["ping_gateway"] = ssh(_retry(_in_guest("ping", "-c", "1", "-W", "2", GATEWAY) + " >/dev/null"))
    for check, name, want in (("dns_private", PRIVATE_NAME, PRIVATE_ADDR), ("dns_public", PUBLIC_NAME, HTTP_ADDR)):
        _ok, answer = ssh(_retry("%s | grep -q ' %s$'" % (_in_guest("python3", "-c", DNS_QUERY, GATEWAY, name), want.replace(".", "\\."))) + "; "
                          + _in_guest("python3", "-c", DNS_QUERY, GATEWAY, name))
        results[check] = (answer.endswith("rcode=0 %s" % want), "%s: %s" % (name, answer[-200:]))
    _ok, answer = ssh(_retry(_in_guest("python3", "-c", HTTP_GET, "http://%s/" % HTTP_ADDR) + " >/dev/null 2>&1") + "; "
                      + _in_guest("python3", "-c", HTTP_GET, "http://%s/" % HTTP_ADDR) + " 2>&1 | tail -n 1")
    results["nat_out"] = (answer == "client=%s" % vm.address, answer[-200:])
    answer = None
    for _attempt in range(5):
        answer = hostlab.connect(vm.address, FORWARDED_PORT)
        if answer:
            break
    results["forward_in"] = (answer == "peer=%s.1" % UPLINK_NET, "%s:%d -> %s" % (vm.address, FORWARDED_PORT, answer))
    return results
