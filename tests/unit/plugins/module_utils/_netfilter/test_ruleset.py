"""The shared run of the rule-set modules: what it does around want -> have -> plan -> apply."""

from __future__ import annotations

import gc

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import ruleset


@pytest.mark.parametrize("enabled", [True, False])
def test_cycle_collector_paused_during_a_run_and_left_as_it_was(enabled):
    """A run holds nft's JSON of the whole ruleset; the collector's passes over it cost a fifth of
    a no-change run at 1000 forwards. Paused inside, as it was afterwards, also after a failure."""
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with ruleset._without_cycle_collection():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError):
            with ruleset._without_cycle_collection():
                raise RuntimeError("apply failed")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
