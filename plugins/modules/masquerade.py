#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: masquerade
short_description: Source NAT (masquerade) for guest subnets, in one atomic transaction
version_added: 0.1.0
description:
  - Manages the masquerade rules that let guests on private subnets reach the outside through
    the host's address, IPv4 and IPv6.
  - The whole set is applied in one transaction in a table or chains the collection owns;
    rules of libvirt, firewalld, Docker or ufw are never flushed or rewritten.
  - Uses the state vocabulary of network resource modules (merged, replaced, overridden,
    deleted, gathered, rendered). A rule is identified by O(config[].source) and
    O(config[].out_interface).
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
  - hypervisor.network.netfilter
options:
  config:
    description: The masquerade rules.
    type: list
    elements: dict
    suboptions:
      source:
        description:
          - Guest subnet in CIDR form (host bits clear), IPv4 or IPv6. C(0.0.0.0/0) and C(::/0)
            are refused (they would masquerade the host's own traffic too).
        type: str
        required: true
      out_interface:
        description:
          - Only masquerade traffic leaving through this interface (the uplink).
          - A Linux interface name that both backends can hold exactly, else it is refused before
            anything changes; no double quote, backslash, white space or control character, and
            no trailing C(*) or C(+) (a wildcard in nft or iptables).
        type: str
      exclude_own_subnet:
        description:
          - Leave traffic from the subnet to itself alone, so guests see each other's real
            addresses. Defaults to true for new rules.
        type: bool
      comment:
        description: A comment stored with the rule (no double quotes, backslashes or newlines; 128 bytes).
        type: str
"""

EXAMPLES = r"""
- name: Guests on 10.10.0.0/24 reach the outside through eth0
  hypervisor.network.masquerade:
    config:
      - source: 10.10.0.0/24
        out_interface: eth0
        comment: lab guests

- name: Exactly these rules, nothing else of this module's
  hypervisor.network.masquerade:
    state: overridden
    config:
      - source: 10.10.0.0/24
      - source: fd00:10::/64
        out_interface: eth0

- name: See what is there
  hypervisor.network.masquerade:
    state: gathered
  register: masq

- name: Remove every masquerade rule of this module
  hypervisor.network.masquerade:
    state: deleted
"""

RETURN = r"""
# The same for masquerade and port_forward (kept in step with the netfilter doc fragment).
changed:
  description: Whether the rules, the persistent files or another manager's rules changed.
  returned: always
  type: bool
commands:
  description: What was run, or in check mode what would be run (the whole C(nft -f) or
    C(iptables-restore) script, file writes, links).
  returned: always
  type: list
  elements: str
before:
  description: The items before the task, as read back from the host.
  returned: when the host was read
  type: list
  elements: dict
after:
  description:
    - The items after the task, as loaded in the one transaction (in check mode, as planned).
    - Left out when nothing changed (as the resource modules of ansible.netcommon do); RV(before) is then
      the state, and a no-change run across a fleet does not carry every item twice.
  returned: when state is merged, replaced, overridden or deleted and something changed (in check
    mode, would change)
  type: list
  elements: dict
gathered:
  description: The items on the host.
  returned: when state is gathered
  type: list
  elements: dict
rendered:
  description: The nft script or iptables-restore lines for O(config).
  returned: when state is rendered
  type: list
  elements: str
backend:
  description: The backend used, C(nftables) or C(iptables).
  returned: always
  type: str
persisted:
  description: The persistent file(s) (C(file)) and the unit of ours that loads them at boot
    (C(loader), C(service)).
  returned: when O(persist) is true and the rules were applied (with O(rollback_timeout), by the
    confirmation)
  type: dict
rollback:
  description:
    - With O(rollback_timeout), what became of it. C(pending) is true while the previous rules
      would still come back (the confirmation failed); C(confirmed) is true once the controller
      confirmed; C(state) is the watcher's state file next to the lock, and C(watcher_pid) its process.
    - After a failed confirmation the previous rules come back within O(rollback_timeout);
      C(<state>.done) records what the watcher ran.
  returned: when O(rollback_timeout) is set and the rules changed
  type: dict
  sample: {"pending": false, "confirmed": true, "timeout": 30, "token": "3f1c...", "watcher_pid": 4242,
           "state": "/run/hypervisor-network/netns-4026531840.lock.rollback-masquerade-3f1c....json"}
removed_stale:
  description: Rules of this module found where this run does not put them (the host switched
    O(backend) or O(iptables_variant)), removed in the same run; each entry names the module and
    where the rules were, for example C(masquerade (iptables-legacy)).
  returned: when state is merged, replaced, overridden or deleted
  type: list
  elements: str
  sample: ["masquerade (iptables-nft)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.masquerade_module import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
