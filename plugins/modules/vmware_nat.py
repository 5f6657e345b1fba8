#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vmware_nat
short_description: Port forwards and DNS of a VMware Workstation NAT vmnet on Linux hosts
version_added: 0.1.0
description:
  - Edits the C(nat.conf) of a VMware Workstation NAT vmnet on a Linux host
    (C(/etc/vmware/vmnet8/nat/nat.conf) for V(vmnet8)), managing TCP and UDP port forwards
    (sections C([incomingtcp]) and C([incomingudp]), lines C(host port = guest ip:guest port)) and the
    DNS proxy settings (section C([dns]) with C(policy), C(autodetect) and C(nameserver1) to C(nameserver3)).
  - Changes only the lines it manages and keeps every comment, blank line and other section as it was.
    The file is written atomically, and only when its content changes.
  - After a change it runs O(restart_command) so the vmnet NAT service reads the file again;
    nothing is restarted when nothing changed.
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
options:
  vmnet:
    description:
      - The NAT virtual network, for example V(vmnet8). Selects C(/etc/vmware/VMNET/nat/nat.conf).
    type: str
    default: vmnet8
  path:
    description:
      - The nat.conf to edit, instead of the one of O(vmnet).
    type: path
  state:
    description:
      - V(present) adds or updates the listed port forwards and sets O(dns).
      - V(absent) removes the listed port forwards (matched by protocol and host port).
    type: str
    choices: [present, absent]
    default: present
  port_forwards:
    description:
      - Port forwards from a host port to a guest address and port.
    type: list
    elements: dict
    default: []
    suboptions:
      protocol:
        description: Transport protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      host_port:
        description: Host port, 1-65535; one forward per protocol and host port.
        type: int
        required: true
      guest_ip:
        description:
          - IPv4 address of the guest; inside the vmnet subnet (C([host]) C(ip) and C(netmask)) when the
            file states it. Not needed with O(state=absent).
        type: str
      guest_port:
        description: Guest port, 1-65535. Not needed with O(state=absent).
        type: int
  purge_port_forwards:
    description:
      - With O(state=present), also remove the forwards in the file that are not listed, so
        O(port_forwards) is the complete list.
    type: bool
    default: false
  dns:
    description:
      - Settings of the NAT device's DNS proxy in the C([dns]) section. Only the given keys are set.
      - VMware documents the C([dns]) section mainly for Windows hosts; whether the Linux NAT daemon
        honours every key has not been verified on a real host here.
    type: dict
    suboptions:
      policy:
        description:
          - How the proxy uses several name servers; V(order) one at a time in order, V(rotate) one at a
            time in turn, V(burst) three at once, first answer wins.
        type: str
        choices: [order, rotate, burst]
      nameservers:
        description:
          - Up to three IPv4 name servers, written as C(nameserver1) to C(nameserver3); V([]) removes them.
          - Listing servers turns O(dns.autodetect) off unless it is given.
        type: list
        elements: str
      autodetect:
        description: Whether the proxy uses the host's own name servers.
        type: bool
  restart_command:
    description:
      - Command lines, run in order without a shell, after the file changed. The default is the
        Workstation networking restart on Linux, C(vmware-networks --stop) then C(vmware-networks --start)
        (this briefly disconnects every vmnet). V([]) restarts nothing.
    type: list
    elements: str
    default: ["vmware-networks --stop", "vmware-networks --start"]
notes:
  - Tested against nat.conf fixtures in the documented format and a stand-in C(vmware-networks), not a
    real VMware Workstation (see docs/platforms.md in the collection).
  - The Virtual Network Editor rewrites nat.conf when it saves; run this module again afterwards.
"""

EXAMPLES = r"""
- name: SSH and DNS into a guest on vmnet8, resolve through two name servers
  hypervisor.network.vmware_nat:
    vmnet: vmnet8
    port_forwards:
      - host_port: 2222
        guest_ip: 192.168.79.128
        guest_port: 22
      - protocol: udp
        host_port: 5353
        guest_ip: 192.168.79.128
        guest_port: 53
    dns:
      policy: order
      nameservers: [192.0.2.53, 198.51.100.53]

- name: Drop a forward, restart with systemd instead
  hypervisor.network.vmware_nat:
    state: absent
    port_forwards:
      - host_port: 2222
    restart_command: ["systemctl restart vmware-networks"]
"""

RETURN = r"""
commands:
  description: C(write PATH) and the restart command lines run (or, in check mode, that would run).
  returned: always
  type: list
  elements: str
  sample: ["write /etc/vmware/vmnet8/nat/nat.conf", "vmware-networks --stop", "vmware-networks --start"]
path:
  description: The nat.conf edited.
  returned: always
  type: str
before:
  description: Port forwards and C([dns]) keys found in the file before the task.
  returned: always
  type: dict
after:
  description:
    - Port forwards and C([dns]) keys in the file after the task (predicted in check mode).
    - Left out when nothing changed (as the resource modules of ansible.netcommon do); RV(before) is then
      the state, and a no-change run across a fleet does not carry every item twice.
  returned: when something changed (in check mode, when something would change)
  type: dict
diff:
  description: The file content before and after, with C(--diff).
  returned: when diff mode is on
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._vmware_nat import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
