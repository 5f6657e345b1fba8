#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: virtualbox_natnetwork
short_description: VirtualBox NAT networks and their port forwards
version_added: 0.1.0
description:
  - Creates, updates and removes a VirtualBox NAT network with C(VBoxManage natnetwork),
    managing its IPv4 CIDR, DHCP server, IPv6, enabled flag, IPv4 and IPv6 port forwards and IPv4 loopback
    mappings.
  - Reads the current state from C(VBoxManage natnetwork list) (VirtualBox 7) or
    C(VBoxManage list natnets) (VirtualBox 6, whose C(natnetwork list) leaves out DHCP and rules),
    and changes only what differs, in one C(VBoxManage natnetwork add) or C(modify) call.
  - Run it as the user who owns the VirtualBox configuration (usually without C(become));
    NAT networks live in that user's C(VirtualBox.xml).
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
options:
  name:
    description:
      - The NAT network name. It may contain spaces; no leading or trailing spaces.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the network, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  network:
    description:
      - The IPv4 CIDR of the network, for example V(10.0.2.0/24). Required with O(state=present).
    type: str
  enabled:
    description:
      - Whether the network is enabled. Left as it is when not given; a new network is enabled.
    type: bool
  dhcp:
    description:
      - Whether VirtualBox runs its DHCP server on the network. Left as it is when not given;
        a new network has DHCP on.
    type: bool
  ipv6:
    description:
      - Whether the network also carries IPv6. Left as it is when not given; off on a new network.
    type: bool
  port_forwards:
    description:
      - The complete list of port forwards. The address family of O(port_forwards[].guest_ip)
        decides whether a rule is an IPv4 (C(--port-forward-4)) or IPv6 (C(--port-forward-6)) rule.
      - When not given, the rules are left as they are; V([]) removes them all.
    type: list
    elements: dict
    suboptions:
      name:
        description: Rule name, unique per address family; no C(:), C([) or C(]), at most 63 bytes.
        type: str
        required: true
      protocol:
        description: Transport protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      host_ip:
        description: Host address to listen on; empty or omitted means every address.
        type: str
        default: ""
      host_port:
        description: Host port, 1-65535.
        type: int
        required: true
      guest_ip:
        description: Guest address; an IPv4 guest must be inside O(network).
        type: str
        required: true
      guest_port:
        description: Guest port, 1-65535.
        type: int
        required: true
  loopback_mappings:
    description:
      - The complete list of IPv4 loopback mappings (C(--loopback-4 address=offset)); the guest reaches
        the host's loopback O(loopback_mappings[].address) at the network address plus the offset.
      - When not given, the mappings are left as they are.
      - Some VirtualBox releases ignore C(--loopback-4 delete); a mapping that VirtualBox keeps is
        then reported again on the next run.
    type: list
    elements: dict
    suboptions:
      address:
        description: A host loopback address in 127.0.0.0/8.
        type: str
        required: true
      offset:
        description: Offset of the guest-visible address inside O(network).
        type: int
        required: true
notes:
  - Tested against a replay of VBoxManage's documented output formats, not a real VirtualBox
    (see docs/platforms.md in the collection).
seealso:
  - name: VBoxManage natnetwork
    description: The VirtualBox manual page of the command this module drives.
    link: https://www.virtualbox.org/manual/topics/vboxmanage.html
"""

EXAMPLES = r"""
- name: A NAT network with SSH into one guest
  hypervisor.network.virtualbox_natnetwork:
    name: lab net
    network: 10.0.2.0/24
    dhcp: true
    port_forwards:
      - name: ssh
        host_port: 2222
        guest_ip: 10.0.2.15
        guest_port: 22
      - name: web6
        protocol: tcp
        host_port: 8080
        guest_ip: fd17:625c:f037:2::15
        guest_port: 80
    loopback_mappings:
      - address: 127.0.0.1
        offset: 2

- name: Remove it
  hypervisor.network.virtualbox_natnetwork:
    name: lab net
    state: absent
"""

RETURN = r"""
commands:
  description: The VBoxManage command lines run (or, in check mode, that would run), shell-quoted.
  returned: always
  type: list
  elements: str
  sample: ["VBoxManage natnetwork modify --netname 'lab net' --port-forward-4 'ssh:tcp:[]:2222:[10.0.2.15]:22'"]
before:
  description: The network as VBoxManage reported it before the task; empty if it did not exist.
  returned: always
  type: dict
after:
  description:
    - The network after the task (read back from VBoxManage, or predicted in check mode).
    - Left out when nothing changed (as the resource modules of ansible.netcommon do); RV(before) is then
      the state, and a no-change run across a fleet does not carry every item twice.
  returned: when something changed (in check mode, when something would change)
  type: dict
diff:
  description: C(before) and C(after), with C(--diff).
  returned: when diff mode is on
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._virtualbox import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
