# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port_forward module's argument spec and its run: a rule set of DNAT forwards."""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as rules_ir
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import ruleset

ITEM_OPTIONS = dict(
    protocol=dict(type="str", default="tcp", choices=["tcp", "udp", "both"]),
    host_port=dict(type="str", required=True),
    destination=dict(type="str"),
    destination_port=dict(type="str"),
    in_interface=dict(type="str"),
    host_address=dict(type="str"),
    allowed_sources=dict(type="list", elements="str"),
    hairpin=dict(type="bool"),
    hairpin_sources=dict(type="list", elements="str"),
    comment=dict(type="str"),
)

ARGUMENT_SPEC = ruleset.common_argument_spec(
    ITEM_OPTIONS,
    coexistence=dict(type="str", default="open", choices=["open", "fail", "ignore"]),
    allow_local_port_takeover=dict(type="bool", default=False),
)

KIND = ruleset.Kind(
    "port_forward", model.parse_port_forward, model.port_forward_key,
    rules_ir.compile_port_forwards, rules_ir.decompile_port_forwards, forwards=True,
)


def run(module):
    return ruleset.run(module, KIND)
