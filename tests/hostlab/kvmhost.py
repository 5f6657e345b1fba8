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


# -- what must survive a reboot (issue 12) ---------------------------------------------------------

# After a reboot, before anything of ours talks to libvirt: wait (up to 180 s) for the network's
# bridge address and its dnsmasq, which only libvirt's own start at boot can bring; then say how
# libvirtd came to run. No virsh here: it would activate libvirtd through its socket and start the
# autostarted network itself, hiding a host where nothing starts libvirt at boot.
BOOT_WAIT = (
    "ok=1; for i in $(seq 180); do "
    "ip -4 -o addr show dev %s 2>/dev/null | grep -q ' %s/24 ' && pgrep -f 'dnsmasq.*/lab.conf' >/dev/null && { ok=0; break; }; "
    "sleep 1; done; echo \"waited=${i}s\"; "
    "systemctl show -p ActiveState -p ActiveEnterTimestampMonotonic libvirtd.service libvirtd.socket virtnetworkd.service libvirt-guests.service; "
    "systemctl show -p UserspaceTimestampMonotonic -p FinishTimestampMonotonic; "
    "journalctl -b -o short-monotonic --no-pager 2>/dev/null | grep -iE 'libvirt|virbr|dnsmasq|hypervisor-network' | head -n 30; "
    "exit $ok" % (BRIDGE, GATEWAY)
)

STATE_SCRIPT = (
    "echo '### net'; virsh -q net-info lab 2>&1; "
    "echo '### addr'; ip -4 -o addr show dev %s 2>&1 | awk '{print $4}'; "
    "echo '### iptables'; iptables-save 2>&1; "
    "echo '### nft'; nft --stateless list ruleset 2>&1; "
    "echo '### ip_forward'; sysctl -n net.ipv4.ip_forward 2>&1; "
    "echo '### end'" % BRIDGE
)


def _sections(text):
    sections, name = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            name = line[4:].strip()
            sections[name] = []
        elif name:
            sections[name].append(line)
    return sections


def _nft_rules(lines):
    """[(table, chain, rule)] of ``nft --stateless list ruleset`` (no packet and byte counts: a
    rule reads the same before and after a reboot)."""
    rules, table, chain = [], None, None
    for raw in lines:
        line = raw.strip()
        if raw.startswith("table "):
            table, chain = line.rstrip(" {"), None
        elif line.startswith("chain ") and table:
            chain = line[6:].rstrip(" {")
        elif line == "}":
            if chain:
                chain = None
            else:
                table = None
        elif table and chain and line and not line.startswith("type "):
            rules.append((table, chain, line))
    return rules


def _iptables_rules(lines):
    """["*table -A ..."] of iptables-save: the rules, in order, per table (comments, chain
    policies and counters left out)."""
    rules, table = [], None
    for line in lines:
        if line.startswith("*"):
            table = line
        elif line.startswith("-A ") and table:
            rules.append("%s %s" % (table, line))
    return rules


def persisted_state(hostlab, vm):
    """What the role and libvirt set up that a reboot must bring back, as (state, raw output):
    the network "lab" (active, autostart, persistent, its bridge and address), every iptables
    rule (libvirt 9 writes its NAT and filter rules with the iptables command, iptables-nft on
    Debian 12; with the nftables backend the role puts its forward's accept rules there too), the
    rules of the role's nftables tables, libvirt's masquerade rules for the network in whichever
    form they are (iptables-save or nft), and ip_forward."""
    raw = hostlab.ssh(vm, STATE_SCRIPT, check=False, timeout=120).stdout
    sections = _sections(raw)
    net = {}
    for line in sections.get("net", []):
        if ":" in line:
            key, value = line.split(":", 1)
            if key.strip() in ("Active", "Persistent", "Autostart", "Bridge"):
                net[key.strip()] = value.strip()
    iptables = _iptables_rules(sections.get("iptables", []))
    nft = _nft_rules(sections.get("nft", []))
    subnet = GATEWAY.rsplit(".", 1)[0] + ".0/24"
    masquerade = [rule for rule in iptables if "-s %s" % subnet in rule and "-j MASQUERADE" in rule]
    masquerade += ["%s %s: %s" % rule for rule in nft if "LIBVIRT" in rule[1] and subnet in rule[2] and "masquerade" in rule[2]]
    state = {
        "network": net,
        "bridge_addresses": sorted(line.strip() for line in sections.get("addr", []) if line.strip()),
        "libvirt_masquerade": masquerade,
        "iptables": iptables,
        "role_nft": ["%s %s: %s" % rule for rule in nft if " hypervisor_network_" in rule[0]],
        "ip_forward": " ".join(sections.get("ip_forward", [])).strip(),
    }
    return state, raw


def state_problems(state):
    """What is missing from ``state`` (persisted_state) for the role's network to work."""
    problems = []
    if state["network"] != {"Active": "yes", "Persistent": "yes", "Autostart": "yes", "Bridge": BRIDGE}:
        problems.append("network lab: %s" % state["network"])
    if state["bridge_addresses"] != ["%s/24" % GATEWAY]:
        problems.append("%s addresses: %s" % (BRIDGE, state["bridge_addresses"]))
    if not state["libvirt_masquerade"]:
        problems.append("no libvirt masquerade rule for the network's subnet")
    forward = [rule for rule in state["role_nft"] if "dnat" in rule and GUEST_IP in rule and str(FORWARDED_PORT) in rule]
    if not forward:
        problems.append("no DNAT to %s:%s in the role's nftables tables: %s" % (GUEST_IP, GUEST_PORT, state["role_nft"]))
    if state["ip_forward"] != "1":
        problems.append("ip_forward=%r" % state["ip_forward"])
    return problems


def diagnostics(hostlab, vm, raw):
    """The raw state output and how libvirt and the role's boot units ran, for a failure message."""
    more = hostlab.ssh(vm, "systemctl --no-pager status libvirtd.service libvirtd.socket hypervisor-network-nftables.service "
                           "hypervisor-network-iptables.service 2>&1 | head -n 80; "
                           "update-alternatives --display iptables 2>&1 | head -n 5; "
                           "journalctl -b -u libvirtd.service --no-pager 2>&1 | tail -n 30", check=False, timeout=120).stdout
    return "--- state ---\n%s\n--- units ---\n%s" % (raw, more)


# The role's libvirt network hook on its own: with the collection's FORWARD jump moved below
# libvirt's, a network start (libvirt does not move its own jumps then) must bring it back on top.
HOOK_CHECK = (
    "iptables -w -D FORWARD -j HNET-PFA-FORWARD && iptables -w -A FORWARD -j HNET-PFA-FORWARD && "
    "iptables -w -S FORWARD | grep -- '-j ' | head -n 1 && "
    "virsh -q net-destroy lab >/dev/null && virsh -q net-start lab >/dev/null && "
    "iptables -w -S FORWARD | grep -- '-j ' | head -n 1"
)
