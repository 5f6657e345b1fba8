#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: libvirt_network
short_description: Create, update and remove libvirt virtual networks, DHCP and DNS included
description:
  - Manages one libvirt network through libvirt-python (forward mode, bridge, addresses, DHCP
    ranges and hosts, DNS (forwarders per domain, hosts, SRV and TXT records), dnsmasq options,
    whether it runs and whether it starts at boot).
  - Updates an existing network. The normalised XML of the definition is compared with the wanted
    one; DHCP hosts, DHCP ranges and DNS hosts, TXT and SRV records are changed live with
    C(virNetworkUpdate) (running and persistent definition alike), without a restart.
  - Any other change redefines the network. The new definition is the existing one, edited in place;
    only the elements and attributes this module manages are set or removed, everything else
    (portgroups, virtualport, bandwidth, routes, tftp, bootp, localPtr, C(<nat ipv6='yes'>), elements
    of newer libvirt versions, ...) is kept as it is. A change that would have to remove an element
    carrying such a part (an address with C(<tftp>) dropped from O(ips), C(<nat ipv6='yes'>) on a switch
    away from NAT) fails and names it; nothing is changed then.
  - A running network only picks up a redefinition when it is restarted; with O(restart=true) the module restarts it and then re-attaches every interface
    that was a port of the network's bridge before (the taps of running guests included), so guests
    stay connected. RV(restarted) and RV(reattached) say what happened.
  - Options left unset (null) keep what the network has, or libvirt's default for a new network.
    A list that is set (O(ips), O(dns.forwarders), O(dnsmasq_options), ...) is the whole list.
  - Every value is validated before anything is changed; dnsmasq options are checked so that none
    can add a line to dnsmasq's configuration.
version_added: 0.1.0
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
requirements:
  - libvirt-python (C(python3-libvirt)) on the target host
options:
  uri:
    description: The libvirt connection URI.
    type: str
    default: qemu:///system
  name:
    description: The name of the network.
    type: str
    required: true
  state:
    description:
      - V(present) defines the network as the options say.
      - V(absent) stops the network if it runs and removes its definition.
    type: str
    choices: [present, absent]
    default: present
  active:
    description: Whether the network runs after the task. V(false) stops a running network.
    type: bool
    default: true
  autostart:
    description:
      - Whether libvirt starts the network when libvirtd starts.
      - Null (the default) leaves an existing network's setting as it is, and makes a new network
        start with libvirtd.
    type: bool
  restart:
    description:
      - Whether the module may restart a running network to apply a change that libvirt cannot make
        live. With V(false) the definition is changed, the running network keeps the old one, and
        RV(notes) says a restart is pending.
    type: bool
    default: true
  forward:
    description: How the network reaches the outside. Null keeps what the network has (V(nat) for a new one).
    type: dict
    suboptions:
      mode:
        description:
          - V(nat) (masquerade to the host's uplink), V(route) (routed, no NAT), V(open) (routed, and
            libvirt adds no firewall rules), V(bridge) (use the existing host bridge O(bridge.name)),
            V(isolated) (no forwarding; guests reach the host and each other only).
        type: str
        choices: [nat, route, open, bridge, isolated]
        default: nat
      dev:
        description: Forward only through this host interface.
        type: str
      nat_address_start:
        description: First IPv4 address the NAT may use as source (mode V(nat) only).
        type: str
      nat_address_end:
        description: Last IPv4 address the NAT may use as source.
        type: str
      nat_port_start:
        description:
          - First source port the NAT may use, 1-65535 (libvirt's default range is 1024-65535). V(0) is
            refused, not taken as "unset". Given alone, the range is this one port.
        type: int
      nat_port_end:
        description: Last source port the NAT may use, 1-65535, not below O(forward.nat_port_start).
        type: int
  bridge:
    description: The Linux bridge of the network.
    type: dict
    suboptions:
      name:
        description:
          - The bridge's interface name (at most 15 bytes). Null lets libvirt pick C(virbrN).
          - With O(forward.mode=bridge), the existing host bridge to use.
        type: str
      stp:
        description: Spanning tree on the bridge.
        type: bool
      delay:
        description: The bridge's forward delay in seconds.
        type: int
  mtu:
    description: The MTU of the bridge.
    type: int
  mac:
    description: The MAC address of the bridge (not a multicast one). Null keeps the one libvirt generated.
    type: str
  domain:
    description: The DNS domain of the guests (dnsmasq's C(domain) and C(local)).
    type: str
  domain_local_only:
    description: Answer names under O(domain) from the network only, never forward them upstream.
    type: bool
  ips:
    description: The addresses of the bridge, each with optional DHCP. Null keeps what the network has.
    type: list
    elements: dict
    suboptions:
      address:
        description: The host's address on the network (the guests' gateway and DNS server).
        type: str
        required: true
      prefix:
        description: The prefix length (default 24 for IPv4, 64 for IPv6).
        type: int
      dhcp_ranges:
        description:
          - Address ranges dnsmasq hands out, inside the subnet. A range may not include the network
            address, the IPv4 broadcast address or O(ips[].address) (the gateway), and ranges may not
            overlap.
        type: list
        elements: dict
        suboptions:
          start:
            description: First address of the range.
            type: str
            required: true
          end:
            description: Last address of the range.
            type: str
            required: true
          lease_expiry:
            description: Lease time in O(ips[].dhcp_ranges[].lease_unit); V(0) means infinite.
            type: int
          lease_unit:
            description: Unit of O(ips[].dhcp_ranges[].lease_expiry).
            type: str
            choices: [seconds, minutes, hours]
      dhcp_hosts:
        description:
          - Fixed leases. IPv4 hosts are matched by MAC, IPv6 hosts by name. MACs, IPs and names
            must be unique.
        type: list
        elements: dict
        suboptions:
          mac:
            description: The guest's MAC address (IPv4). A multicast MAC (odd first byte) is refused.
            type: str
          name:
            description: The guest's host name.
            type: str
          ip:
            description: The fixed address, inside the subnet, not the network, broadcast or gateway address.
            type: str
            required: true
  dns:
    description:
      - The DNS service of the network's dnsmasq. Null keeps what the network has.
      - Inside it too, an option left unset keeps what the network has (O(dns.forwarders) alone does not
        remove the network's DNS hosts, TXT or SRV records); a list that is given is the whole list.
        With O(dns.enable=false) every list is emptied, as libvirt allows none of them then.
    type: dict
    suboptions:
      enable:
        description: V(false) turns dnsmasq's DNS off (DHCP keeps working).
        type: bool
      forward_plain_names:
        description: Whether names without a dot are forwarded upstream.
        type: bool
      forwarders:
        description:
          - Upstream servers, asked in this order. With O(dns.forwarders[].domain), only for names
            under that domain; without O(dns.forwarders[].addr), names under the domain are
            answered locally only.
          - The fix for a host whose first nameserver answers REFUSED for public names.
        type: list
        elements: dict
        suboptions:
          domain:
            description: Only names under this domain go to this forwarder.
            type: str
          addr:
            description: The server's address.
            type: str
          port:
            description: The server's port.
            type: int
      hosts:
        description: Extra host records.
        type: list
        elements: dict
        suboptions:
          ip:
            description: The address.
            type: str
            required: true
          hostnames:
            description: Names for the address.
            type: list
            elements: str
            required: true
      srv:
        description: SRV records.
        type: list
        elements: dict
        suboptions:
          service:
            description: The service name, without the leading underscore.
            type: str
            required: true
          protocol:
            description: V(tcp) or V(udp).
            type: str
            default: tcp
          domain:
            description: The domain of the record.
            type: str
          target:
            description: The host that offers the service.
            type: str
          port:
            description: The port of the service.
            type: int
          priority:
            description: The priority.
            type: int
          weight:
            description: The weight.
            type: int
      txt:
        description: TXT records.
        type: list
        elements: dict
        suboptions:
          name:
            description: The record's name.
            type: str
            required: true
          value:
            description: The text.
            type: str
            required: true
  dnsmasq_options:
    description:
      - Extra dnsmasq options, one C(name) or C(name=value) each, through libvirt's dnsmasq XML
        namespace, for example V(edns-packet-max=4096). Null keeps what the network has.
    type: list
    elements: str
notes:
  - RV(commands) lists the virsh-equivalent steps (with the XML) and the C(ip link) commands of a
    re-attach. In check mode nothing is defined, undefined, started, stopped or updated.
seealso:
  - name: libvirt network XML format
    description: The XML this module writes.
    link: https://libvirt.org/formatnetwork.html
"""

EXAMPLES = r"""
- name: A NAT network with DHCP, fixed leases and per-domain DNS forwarders
  hypervisor.network.libvirt_network:
    name: lab
    bridge: {name: virbr10}
    domain: lab.internal
    ips:
      - address: 192.168.100.1
        prefix: 24
        dhcp_ranges:
          - {start: 192.168.100.100, end: 192.168.100.199, lease_expiry: 1, lease_unit: hours}
        dhcp_hosts:
          - {mac: "52:54:00:00:00:10", name: web, ip: 192.168.100.10}
    dns:
      forwarders:
        - {domain: corp.example, addr: 10.0.0.53}
        - {addr: 9.9.9.9}
    dnsmasq_options:
      - edns-packet-max=4096

- name: Add a fixed lease to the running network (applied live, no restart)
  hypervisor.network.libvirt_network:
    name: lab
    ips:
      - address: 192.168.100.1
        prefix: 24
        dhcp_ranges:
          - {start: 192.168.100.100, end: 192.168.100.199, lease_expiry: 1, lease_unit: hours}
        dhcp_hosts:
          - {mac: "52:54:00:00:00:10", name: web, ip: 192.168.100.10}
          - {mac: "52:54:00:00:00:11", name: db, ip: 192.168.100.11}

- name: Change a setting that needs a redefine, but never restart the running network
  hypervisor.network.libvirt_network:
    name: lab
    mtu: 9000
    restart: false

- name: Guests on an existing host bridge
  hypervisor.network.libvirt_network:
    name: lan
    forward: {mode: bridge}
    bridge: {name: br0}

- name: Remove a network
  hypervisor.network.libvirt_network:
    name: lab
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the network was (or in check mode would be) changed.
  returned: always
  type: bool
commands:
  description: The steps, as virsh-equivalent lines with their XML, and C(ip link) re-attach commands.
  returned: always
  type: list
  elements: str
  sample: ["virsh net-update lab add-last ip-dhcp-host '<host mac=\"52:54:00:00:00:11\" name=\"db\" ip=\"192.168.100.11\" />' --parent-index 0 --live --config"]
before:
  description: The network's normalised definition before the task, with C(active) and C(autostart); empty if it did not exist.
  returned: always
  type: dict
after:
  description:
    - The definition after the task (in check mode, as it would be); empty for O(state=absent).
    - Left out when nothing changed (as the resource modules of ansible.netcommon do); RV(before) is then
      the state, and a no-change run across a fleet does not carry every item twice.
  returned: when something changed (in check mode, when something would change)
  type: dict
restarted:
  description: Whether the running network was (or would be) restarted to apply a change.
  returned: always
  type: bool
reattached:
  description: Interfaces that were ports of the bridge before the restart and were attached again.
  returned: always
  type: list
  elements: str
  sample: [vnet0, vnet3]
notes:
  description: What the module did beyond the plain change, such as a restart or a pending restart.
  returned: always
  type: list
  elements: str
diff:
  description:
    - With C(--diff), the whole definition before and after (the persistent XML libvirt has, and the
      same XML with the change made), in one serialisation so that only the change shows.
  returned: when diff mode is on
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_module import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
