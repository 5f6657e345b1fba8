# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The masquerade module's argument spec and its run: a rule set of source-NAT items."""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as rules_ir
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import ruleset

ITEM_OPTIONS = dict(
    source=dict(type="str", required=True),
    out_interface=dict(type="str"),
    exclude_own_subnet=dict(type="bool"),
    comment=dict(type="str"),
)

ARGUMENT_SPEC = ruleset.common_argument_spec(ITEM_OPTIONS)

KIND = ruleset.Kind(
    "masquerade", model.parse_masquerade, model.masquerade_key,
    lambda _index, partial, base, _connected: model.complete_masquerade(partial, base),
    rules_ir.compile_masquerades, rules_ir.masquerade_items,
)


def run(module):
    return ruleset.run(module, KIND)
