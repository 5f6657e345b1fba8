#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: libvirt_interface
short_description: Tune a guest NIC on a libvirt network (model, virtio queues and queue sizes)
description:
  - Sets the model, the number of virtio queues and the virtio RX/TX queue sizes of one NIC of a
    libvirt domain, the NIC attached to libvirt network O(network), in the domain's persistent
    definition.
  - This is the fix for packets dropped on a guest's tap device, which show up in guests as
    intermittent DNS timeouts; more queues (one per vCPU) and larger queues. The module reports the
    tap's C(tx_dropped) counter of a running guest.
  - A running guest keeps its current NIC until it is shut down and started again (a reboot from
    inside is not enough); RV(restart_required) says when that is still needed.
  - Only the one C(<interface>) element goes back to libvirt (C(virDomainUpdateDeviceFlags) with
    C(VIR_DOMAIN_AFFECT_CONFIG), as C(virsh update-device --config) does), so the rest of the domain,
    VNC/SPICE passwords included, is never read or rewritten by this module. A driver that cannot
    update devices gets the whole definition back, read with its secrets
    (C(VIR_DOMAIN_XML_INACTIVE|VIR_DOMAIN_XML_SECURE), as C(virsh edit) does) and changed in that NIC only.
  - The per-host lock is held from the first read of the domain to the write, so two tasks tuning
    the same domain at once cannot overwrite each other's change.
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
  domain:
    description: The name of the domain (guest).
    type: str
    required: true
  network:
    description: The libvirt network the NIC is attached to (C(<interface type='network'>)).
    type: str
    required: true
  mac:
    description: The NIC's MAC address, needed when the domain has more than one NIC on O(network).
    type: str
  model:
    description: The NIC model, for example V(virtio). Queues and queue sizes need V(virtio). Null keeps it.
    type: str
  queues:
    description: Number of virtio queue pairs (multiqueue), usually the number of vCPUs. Null keeps it.
    type: int
  rx_queue_size:
    description: Size of each virtio RX queue.
    type: int
    choices: [256, 512, 1024]
  tx_queue_size:
    description:
      - Size of each virtio TX queue. QEMU honours more than 256 only for vhost-user backends and
        keeps 256 otherwise.
    type: int
    choices: [256, 512, 1024]
notes:
  - In check mode the domain is not changed; RV(after) is what it would be.
seealso:
  - name: libvirt domain XML, network interfaces
    description: The C(<driver>) attributes this module sets.
    link: https://libvirt.org/formatdomain.html#setting-nic-driver-specific-options
"""

EXAMPLES = r"""
- name: Four virtio queues with 1024-entry RX/TX rings for the guest on network lab
  hypervisor.network.libvirt_interface:
    domain: web1
    network: lab
    model: virtio
    queues: 4
    rx_queue_size: 1024
    tx_queue_size: 1024
  register: nic

- name: Tell when the guest needs a shutdown and start to use them
  ansible.builtin.debug:
    msg: "web1 must be shut down and started again (tap {{ nic.tap }} dropped {{ nic.tap_tx_dropped }} packets)"
  when: nic.restart_required
"""

RETURN = r"""
changed:
  description: Whether the persistent definition was (or in check mode would be) changed.
  returned: always
  type: bool
commands:
  description: The change, as a virsh-equivalent C(virsh update-device DOMAIN /dev/stdin --config) with the new interface XML.
  returned: always
  type: list
  elements: str
before:
  description: The NIC's MAC, network, model, queues and queue sizes before the task.
  returned: always
  type: dict
  sample: {"mac": "52:54:00:12:34:56", "network": "lab", "model": "virtio", "queues": null, "rx_queue_size": null, "tx_queue_size": null}
after:
  description:
    - The same after the task.
    - Left out when nothing changed (as the resource modules of ansible.netcommon do); RV(before) is then
      the state, and a no-change run across a fleet does not carry every item twice.
  returned: when something changed (in check mode, when something would change)
  type: dict
running:
  description: Whether the domain runs.
  returned: always
  type: bool
restart_required:
  description: Whether the running guest still uses other settings than the definition (shut down and start it).
  returned: always
  type: bool
tap:
  description: The host-side tap device of the NIC of a running guest.
  returned: always
  type: str
  sample: vnet0
tap_tx_dropped:
  description: The tap's tx_dropped counter (packets the host could not hand to the guest), null if the guest is not running.
  returned: always
  type: int
diff:
  description: With C(--diff), the interface XML before and after.
  returned: when diff mode is on
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.interface_module import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
