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
  - hypervisor.network developers
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
        description: Guest subnet in CIDR form (host bits clear), IPv4 or IPv6.
        type: str
        required: true
      out_interface:
        description: Only masquerade traffic leaving through this interface (the uplink).
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
# see the netfilter doc fragment: changed, commands, before, after, gathered, rendered,
# backend, persisted
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hypervisor.network.plugins.module_utils import _netfilter as netfilter
from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main

ITEM_OPTIONS = dict(
    source=dict(type="str", required=True),
    out_interface=dict(type="str"),
    exclude_own_subnet=dict(type="bool"),
    comment=dict(type="str"),
)


def main():
    module = AnsibleModule(argument_spec=netfilter.common_argument_spec(ITEM_OPTIONS), supports_check_mode=True)
    run_module_main(module, lambda m: netfilter.run(m, netfilter.MASQUERADE))


if __name__ == "__main__":
    main()
