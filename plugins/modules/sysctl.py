#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sysctl
short_description: Kernel sysctl keys of a hypervisor host, runtime and in /etc/sysctl.d, owned key by key
description:
  - Sets the kernel keys named in O(values) (for example the socket buffer limits C(net.core.rmem_max)
    and C(net.core.wmem_max) that guests' taps and libvirtd's netlink sockets run into) in C(/proc/sys)
    and, with O(persist), writes them to one file in C(/etc/sysctl.d) so they come back after a reboot.
  - The module owns keys, not files. It edits only the lines of the keys a task names, in place, and
    keeps every other line, comment and their order. It shares a file with M(hypervisor.network.ip_forward)
    (both default to the same file) and with other tasks of this module. A file is removed only when it
    carries a header of this collection and nothing else is left in it.
  - Every key is checked before anything is written. A key that this kernel or network namespace does
    not have (no file under C(/proc/sys)), or a value the key cannot hold (words where the kernel keeps
    integers, two integers where it keeps one), fails the task naming the key and the value, and the
    host is left unchanged.
  - What only the kernel can judge (a value out of range, a range in the wrong order) shows when the
    value is written. If the kernel refuses a value or stores a different one (some keys are clamped or
    rounded), the module writes back the old values of the keys it already wrote in that run, changes
    no file, and fails naming the key and the value.
  - Keys under C(net.) mostly belong to a network namespace; the module changes the namespace it runs in.
    Which C(net.core) keys are per namespace depends on the kernel (C(net.core.rmem_max) and
    C(net.core.wmem_max) exist in a network namespace other than the host's only on kernels that made
    them per namespace, such as 6.18; on Debian 12's 6.1 they exist in the host's namespace only).
  - Nothing is written when the values and the file are already as wanted; a second run reports no change.
version_added: 0.1.0
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
options:
  values:
    description:
      - The keys and their values, for example C(net.core.rmem_max) with C(8388608). Keys are dotted, as
        C(sysctl) prints them; the slash form and interface names that contain a dot are not supported.
      - A value is an integer, a list of integers for keys that hold several
        (C([32768, 60999]) or the string C("32768 60999") for C(net.ipv4.ip_local_port_range)), or a string for
        keys that hold words (C(cubic) for C(net.ipv4.tcp_congestion_control)). V(true) and V(false) are written
        as C(1) and C(0).
      - With O(state=absent) only the keys count; their values are ignored.
    type: dict
    required: true
  state:
    description:
      - V(present) sets the keys at runtime and, with O(persist), in O(sysctl_file).
      - V(absent) takes the keys' lines out of O(sysctl_file) and leaves the runtime values as they are
        (the kernel has no "unset"; they return to the kernel's defaults at the next boot).
    type: str
    choices: [present, absent]
    default: present
  persist:
    description:
      - Write the keys to O(sysctl_file) so they survive a reboot.
      - V(false) changes the runtime values only and leaves the file as it is.
    type: bool
    default: true
  sysctl_file:
    description:
      - The sysctl.d file that holds the keys. A new file gets a header saying it is managed by
        hypervisor.network; in an existing file, ours or not, only the lines of the keys this task
        names change, and an existing file keeps its mode.
      - An absolute path whose name ends in C(.conf), the only files systemd-sysctl reads.
      - The default is the file M(hypervisor.network.ip_forward) writes; both modules keep each other's lines.
    type: path
    default: /etc/sysctl.d/90-hypervisor-network.conf
notes:
  - Runs C(sysctl -w KEY=VALUE) for each key that differs; every command is reported in RV(commands).
  - In check mode nothing is written; RV(after) is what the values would be. A value the kernel would
    refuse for its range only shows when it is written.
  - Do not manage one key with both this module and M(hypervisor.network.ip_forward); use ip_forward for
    the forwarding and bridge netfilter switches.
seealso:
  - module: hypervisor.network.ip_forward
  - name: sysctl.d(5)
    description: How the sysctl.d file is read at boot.
    link: https://www.freedesktop.org/software/systemd/man/latest/sysctl.d.html
"""

EXAMPLES = r"""
- name: Socket buffer limits for a host whose libvirtd logs "No buffer space available"
  hypervisor.network.sysctl:
    values:
      net.core.rmem_max: 8388608
      net.core.wmem_max: 8388608

- name: A port range and strict reverse-path filtering, runtime only
  hypervisor.network.sysctl:
    values:
      net.ipv4.ip_local_port_range: [32768, 60999]
      net.ipv4.conf.all.rp_filter: 1
    persist: false

- name: Keys in a file of their own
  hypervisor.network.sysctl:
    values:
      net.ipv4.tcp_congestion_control: cubic
    sysctl_file: /etc/sysctl.d/80-tcp.conf

- name: Take the buffer keys out of the file again (runtime values stay until the next boot)
  hypervisor.network.sysctl:
    state: absent
    values:
      net.core.rmem_max:
      net.core.wmem_max:
"""

RETURN = r"""
changed:
  description: Whether a value or the file was (or in check mode would be) changed.
  returned: always
  type: bool
commands:
  description:
    - What the module ran or, in check mode, would run, in order. C(write PATH) and C(remove PATH)
      stand for the atomic file writes.
  returned: always
  type: list
  elements: str
  sample: ["sysctl -w net.core.rmem_max=8388608", "write /etc/sysctl.d/90-hypervisor-network.conf"]
before:
  description:
    - The keys the task names and their values before it ran, as C(/proc/sys) shows them (words joined by
      one space); null for a key the kernel lacks (only with O(state=absent)).
  returned: always
  type: dict
  sample: {"net.core.rmem_max": "212992", "net.ipv4.ip_local_port_range": "32768 60999"}
after:
  description:
    - The same keys after the run (read back), or in check mode as they would be.
    - Left out when nothing changed; RV(before) is then the state.
  returned: when something changed (in check mode, when something would change)
  type: dict
  sample: {"net.core.rmem_max": "8388608", "net.ipv4.ip_local_port_range": "32768 60999"}
sysctl_file:
  description: The sysctl.d file that holds the keys, or null when nothing is persisted (O(persist=false) or O(state=absent)).
  returned: always
  type: str
  sample: /etc/sysctl.d/90-hypervisor-network.conf
diff:
  description: With C(--diff), the values and the file, before and after.
  returned: when diff mode is on
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._sysctl_keys import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
