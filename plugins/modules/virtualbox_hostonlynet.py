#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: virtualbox_hostonlynet
short_description: VirtualBox 7 host-only networks (VBoxManage hostonlynet)
version_added: 0.1.0
description:
  - Creates, updates and removes a VirtualBox 7 host-only network with C(VBoxManage hostonlynet add),
    C(modify) and C(remove), managing its netmask, the range of addresses its DHCP server hands out, and whether
    it is enabled.
  - Reads the current state from C(VBoxManage list hostonlynets) and changes only what differs, in one call.
  - Host-only networks replaced host-only interfaces in VirtualBox 7 on hosts where VirtualBox uses the
    system's vmnet framework (macOS). Where VirtualBox has no C(hostonlynet) command (Linux and Windows
    hosts, which keep host-only interfaces C(vboxnetN)), the module fails and says so; the
    hypervisor.network.virtualbox_host role manages those interfaces.
  - Run it as the user who owns the VirtualBox configuration (usually without C(become)).
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
options:
  name:
    description:
      - The host-only network's name. It may contain spaces; no leading or trailing spaces.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the network, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  netmask:
    description:
      - The network's IPv4 netmask, dotted, between V(128.0.0.0) and V(255.255.255.252).
    type: str
    default: 255.255.255.0
  lower_ip:
    description:
      - The first address of the DHCP range, for example V(192.168.60.2). Required with O(state=present).
      - With O(netmask) it gives the network; neither end of the range may be its network or broadcast address.
    type: str
  upper_ip:
    description:
      - The last address of the DHCP range, in the same network as O(lower_ip) and not below it.
        Required with O(state=present).
    type: str
  enabled:
    description:
      - Whether the network is enabled.
    type: bool
    default: true
notes:
  - Tested against a stand-in for VBoxManage written from VirtualBox's documentation and source, not
    against a real VirtualBox (see docs/platforms.md in the collection).
seealso:
  - module: hypervisor.network.virtualbox_natnetwork
  - name: VBoxManage hostonlynet
    description: The VirtualBox manual page of the command this module drives.
    link: https://www.virtualbox.org/manual/topics/vboxmanage.html
"""

EXAMPLES = r"""
- name: A host-only network for the lab guests
  hypervisor.network.virtualbox_hostonlynet:
    name: lab hostonly
    netmask: 255.255.255.0
    lower_ip: 192.168.60.2
    upper_ip: 192.168.60.199

- name: Keep it defined but switched off
  hypervisor.network.virtualbox_hostonlynet:
    name: lab hostonly
    lower_ip: 192.168.60.2
    upper_ip: 192.168.60.199
    enabled: false

- name: Remove it
  hypervisor.network.virtualbox_hostonlynet:
    name: lab hostonly
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the network was (or in check mode would be) created, changed or removed.
  returned: always
  type: bool
commands:
  description: The VBoxManage commands run or, in check mode, that would run, as shell-quoted strings.
  returned: always
  type: list
  elements: str
  sample: ["VBoxManage hostonlynet add --name='lab hostonly' --netmask=255.255.255.0 --lower-ip=192.168.60.2 --upper-ip=192.168.60.199 --enable"]
before:
  description: The network before the run (C(name), C(id), C(enabled), C(netmask), C(lower_ip), C(upper_ip)); empty when it did not exist.
  returned: always
  type: dict
  sample: {}
after:
  description:
    - The network after the run, read back from VirtualBox (in check mode, as it would be); empty when removed.
    - Left out when nothing changed; RV(before) is then the state.
  returned: when something changed (in check mode, when something would change)
  type: dict
  sample: {"name": "lab hostonly", "id": "3f0c1a2e-9b51-4d57-8a43-5b0c7e1d2f60", "enabled": true,
           "netmask": "255.255.255.0", "lower_ip": "192.168.60.2", "upper_ip": "192.168.60.199"}
diff:
  description: With C(--diff), RV(before) and RV(after).
  returned: when diff mode is on
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._virtualbox_hostonlynet import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
