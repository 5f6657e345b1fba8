#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ip_forward
short_description: IPv4/IPv6 forwarding and bridge netfilter switches of a hypervisor host
description:
  - Turns IPv4 forwarding (C(net.ipv4.ip_forward)) and IPv6 forwarding (C(net.ipv6.conf.all.forwarding))
    on or off, and optionally the br_netfilter switches C(net.bridge.bridge-nf-call-iptables),
    C(-ip6tables) and C(-arptables), which decide whether bridged traffic passes iptables/nftables
    ip and ip6 family hooks.
  - Sets the runtime value in C(/proc/sys) and, with O(persist), writes the keys to one file in
    C(/etc/sysctl.d) so the values come back after a reboot. The module says in its result where
    it wrote.
  - The module owns keys, not files. It edits only the lines of the keys the task manages (the
    options that are not null), in place, as M(ansible.posix.sysctl) does for one key, and keeps every
    other line, comment and their order. Two tasks may share a file (for example the bridge_host
    role's C(bridge_nf_call_iptables) and a later task with only O(ipv4)), and O(sysctl_file) may be a
    file such as C(/etc/sysctl.conf). A file is removed only when it carries the module's header and
    nothing else is left in it.
  - These settings belong to a network namespace; the module changes the namespace it runs in.
  - Setting a C(bridge_nf_call_*) option to V(true) needs the br_netfilter kernel module. If its
    switches are missing the module loads it with C(modprobe) (and, with O(persist), lists it in
    O(modules_load_file) so it is loaded before the sysctl file is applied at boot). If it cannot be
    loaded, the module fails and says so.
  - A switch that the kernel does not have (br_netfilter not loaded, IPv6 disabled) counts as off.
  - Nothing is written when the values and files are already as wanted; a second run reports no change.
version_added: 0.1.0
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
options:
  state:
    description:
      - V(present) sets the switches as the options say.
      - V(absent) turns off every switch whose option is not null, and, when O(sysctl_file) carries
        the module's header, every switch that file sets; then takes those keys' lines out of
        O(sysctl_file) and the C(br_netfilter) line the module added out of O(modules_load_file).
        A file is removed only when it carries the module's header and nothing else is left.
    type: str
    choices: [present, absent]
    default: present
  ipv4:
    description:
      - IPv4 forwarding, C(net.ipv4.ip_forward). V(true) or V(false) (or any boolean Ansible accepts,
        such as V(yes)); an explicit null leaves it alone.
      - Writing it also sets C(net.ipv4.conf.*.forwarding) of every interface, as the kernel does.
      - The type is C(raw) only so that null can be told from the default; anything but a boolean or
        null is refused.
    type: raw
    default: true
  ipv6:
    description:
      - IPv6 forwarding, C(net.ipv6.conf.all.forwarding). Null (the default) leaves it alone.
      - With forwarding on, Linux ignores router advertisements on interfaces whose C(accept_ra) is
        C(1). A host that gets its own IPv6 address or default route by SLAAC needs C(accept_ra=2)
        on its uplink before this is turned on, or it loses IPv6 connectivity when the route expires.
    type: bool
  bridge_nf_call_iptables:
    description:
      - C(net.bridge.bridge-nf-call-iptables) (br_netfilter). V(true) passes bridged IPv4 traffic
        through the ip family netfilter hooks, as Kubernetes and some firewalls want; V(false)
        keeps bridged guest traffic out of the host firewall. Null (the default) leaves it alone.
    type: bool
  bridge_nf_call_ip6tables:
    description:
      - C(net.bridge.bridge-nf-call-ip6tables), the same for bridged IPv6 traffic. Null leaves it alone.
    type: bool
  bridge_nf_call_arptables:
    description:
      - C(net.bridge.bridge-nf-call-arptables), the same for bridged ARP. Null leaves it alone.
    type: bool
  persist:
    description:
      - Write the managed keys to O(sysctl_file) (and C(br_netfilter) to O(modules_load_file) while a
        C(bridge_nf_call_*) switch in O(sysctl_file) is on) so the values survive a reboot.
      - V(false) changes the runtime values only and leaves both files as they are; use
        O(state=absent) to remove them.
    type: bool
    default: true
  sysctl_file:
    description:
      - The sysctl.d file that holds the switches. A new file gets a header saying it is managed by
        hypervisor.network; in an existing file, ours or not, only the lines of the keys this task
        manages change, and an existing file keeps its mode.
      - An absolute path whose name ends in C(.conf), the only files systemd-sysctl reads.
    type: path
    default: /etc/sysctl.d/90-hypervisor-network.conf
  modules_load_file:
    description:
      - The modules-load.d file that loads br_netfilter at boot. C(br_netfilter) is listed there while a
        C(bridge_nf_call_*) switch in O(sysctl_file) is on (set by this task or an earlier one), with
        O(persist) on.
      - In a file without the module's header (such as C(/etc/modules-load.d/modules.conf)) the module
        adds C(br_netfilter) after a comment line that marks it, and later takes out only that pair; a
        C(br_netfilter) line someone else wrote stays. The file is removed only when it carries the
        module's header and nothing else is left.
      - An absolute path whose name ends in C(.conf).
    type: path
    default: /etc/modules-load.d/hypervisor-network.conf
notes:
  - Runs C(sysctl -w) and, when needed, C(modprobe br_netfilter); both are reported in RV(commands).
  - In check mode nothing is loaded or written; RV(after) is what the values would be.
seealso:
  - name: sysctl.d(5)
    description: How the sysctl.d file is read at boot.
    link: https://www.freedesktop.org/software/systemd/man/latest/sysctl.d.html
"""

EXAMPLES = r"""
- name: Route between guest networks and the uplink (IPv4), persistent
  hypervisor.network.ip_forward:
    ipv4: true

- name: Forward IPv4 and IPv6, keep bridged guest traffic out of the host firewall
  hypervisor.network.ip_forward:
    ipv4: true
    ipv6: true
    bridge_nf_call_iptables: false
    bridge_nf_call_ip6tables: false
    bridge_nf_call_arptables: false

- name: Bridged traffic through iptables (loads br_netfilter, also at boot)
  hypervisor.network.ip_forward:
    ipv4: true
    bridge_nf_call_iptables: true
    bridge_nf_call_ip6tables: true

- name: Runtime only, for a lab that is thrown away
  hypervisor.network.ip_forward:
    ipv4: true
    persist: false

- name: Turn everything off that an earlier task turned on, and take its lines out of the files
  hypervisor.network.ip_forward:
    state: absent
"""

RETURN = r"""
changed:
  description: Whether a value, a kernel module or a file was (or in check mode would be) changed.
  returned: always
  type: bool
commands:
  description:
    - What the module ran or, in check mode, would run, in order. C(write PATH) and C(remove PATH)
      stand for the atomic file writes.
  returned: always
  type: list
  elements: str
  sample: ["sysctl -w net.ipv4.ip_forward=1", "write /etc/sysctl.d/90-hypervisor-network.conf"]
before:
  description: The switches this task manages and their values before it ran; null for a switch the kernel lacks.
  returned: always
  type: dict
  sample: {"net.ipv4.ip_forward": 0, "net.ipv6.conf.all.forwarding": 0}
after:
  description:
    - The same switches after the run (read back), or in check mode as they would be.
    - Left out when nothing changed (as the resource modules of ansible.netcommon do); RV(before) is then
      the state, and a no-change run across a fleet does not carry every item twice.
  returned: when something changed (in check mode, when something would change)
  type: dict
  sample: {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1}
sysctl_file:
  description: The sysctl.d file that holds the values, or null when nothing is persisted (O(persist=false) or O(state=absent)).
  returned: always
  type: str
  sample: /etc/sysctl.d/90-hypervisor-network.conf
modules_load_file:
  description:
    - The modules-load.d file that loads br_netfilter at boot, or null when none is needed (no
      C(bridge_nf_call_*) switch in O(sysctl_file) is on, whichever task set it).
  returned: always
  type: str
  sample: /etc/modules-load.d/hypervisor-network.conf
diff:
  description: With C(--diff), the values and each changed file, before and after.
  returned: when diff mode is on
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._sysctl import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
