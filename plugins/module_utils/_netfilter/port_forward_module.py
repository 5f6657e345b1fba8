# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port_forward module's argument spec and its run: a rule set of DNAT forwards."""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import coexist
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as rules_ir
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import ruleset
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.backend import (
    IptablesBackend,
    unlisted_iptables_nft,
)

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

# The rule set of the companion chains: our FORWARD accepts again, in iptables (coexist.py).
COMPANION = "port_forward_accept"


class PortForwardKind(ruleset.Kind):
    """Forwards are placed by the routes, must not take a local listener's port, and must pass the
    other owners' forward chains (coexist.py): where those drop, companion chains in iptables open
    the way next to the nftables backend."""

    def __init__(self):
        super().__init__(
            "port_forward", model.parse_port_forward, model.port_forward_key,
            lambda index, partial, base, connected: model.complete_port_forward(
                "config[%d]" % index, partial, base, connected),
            rules_ir.compile_port_forwards, rules_ir.port_forward_items,
        )

    def first_reads(self):
        return [coexist.RULESET_READ] + [_routes_read(family) for family in (4, 6)]

    def read_ruleset(self, runner):
        return coexist.read_ruleset(runner)

    def routes(self, runner):
        routes = []
        for family in (4, 6):
            listed = runner.read_json(_routes_read(family), cached=True) or []
            routes.extend(dict(route, family=family) for route in listed)
        return routes

    def desired(self, state, partials, have_items, routes):
        items = super().desired(state, partials, have_items, routes)
        model.check_conflicts(items, self.config_places(partials))
        return items

    def config_places(self, partials):
        """{key: index in config}: the desired items are sorted by key and hold the forwards
        already in place, so errors name each forward by where the user wrote it."""
        return {self.key_of(partial): index for index, partial in enumerate(partials)}

    def guard(self, runner, params, partials, items, have_items, have_rules):
        if params["state"] == "deleted" or params.get("allow_local_port_takeover"):
            return
        # forwards already in place (taken over earlier, on purpose) stay: an item read back from
        # the host is in place; any other, only if all its rules are loaded
        have, loaded = set(have_items), set(have_rules)
        # One forward's rules, unsorted: compiling a set of one per forward sorted and grouped
        # N sets of one at N forwards. With none of our rules loaded (a first apply), no forward
        # has all of its rules loaded, and none is compiled for the question.
        coexist.refuse_local_takeover(
            runner, [item for item in items if item not in have
                     and not (loaded and loaded.issuperset(rules_ir.port_forward_rules(item)))],
            self.config_places(partials))

    def surroundings(self, runner, params, backend, listing, items, wanted, routes):
        chains, legacy = coexist.read_chains(runner, listing)
        variants = backend.companion_variants(legacy)
        report, needs = coexist.assess(chains, items, params["coexistence"], routes, companions=variants,
                                       ours=backend.iptables_variant)
        companions = []
        for variant in variants:
            companion = _companion(runner, backend.paths, variant, legacy, listing)
            want = [rule for rule in wanted if rule.chain in (rules_ir.FORWARD, rules_ir.HAIRPIN_FORWARD)
                    and (variant, rule.family) in needs]
            companions.append((companion, rules_ir.canonical(companion.gather()), want))
        # companion chains this run does not plan (the iptables backend needs none) are stale
        unplanned = [_companion(runner, backend.paths, variant, legacy, listing) for variant in _companion_places(runner, legacy)
                     if variant not in variants]
        return ruleset.Surroundings(legacy, report, companions, unplanned)


def _routes_read(family):
    return ["ip", "-%d" % family, "-j", "route", "show", "table", "main"]


def _companion_places(runner, legacy):
    """The iptables variants where a companion chain can have been left."""
    return (["nft"] if runner.has("iptables-nft-save") else []) + (["legacy"] if legacy else [])


def _companion(runner, paths, variant, legacy, listing):
    """Our FORWARD accepts in the iptables ``variant``. The legacy one parses the save already
    read (no table-by-table listing, which would load legacy tables); the nft one needs no
    process where ``listing`` holds no iptables-nft table."""
    saved = legacy if variant == "legacy" else unlisted_iptables_nft(listing)
    return IptablesBackend(runner, COMPANION, paths, variant, saved=saved)


KIND = PortForwardKind()


def run(module):
    return ruleset.run(module, KIND)
