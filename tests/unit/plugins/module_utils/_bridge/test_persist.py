# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bridge persistence renderers against golden files (regenerate: HNET_REGEN_GOLDEN=1)."""

from __future__ import annotations

import os

import pytest
from bridge_fixtures import FIXTURES, host, want

from ansible_collections.hypervisor.network.plugins.module_utils._bridge import persist
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.apply import claims, persist_config
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.plan import plan
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

GOLDEN = FIXTURES / "golden"

SCENARIOS = {
    # The uplink eno1 moves to br0: its addresses and default routes go to the bridge's files.
    "uplink": ("uplink", dict(ports=["eno1", "vnet0"], stp=False, forward_delay=0, ageing_time=600, mtu=9000, mac="02:00:00:00:00:01")),
    # A VLAN-aware bridge: a trunk, an access port, a created VLAN sub-interface, its own VLAN.
    "vlan": ("uplink", dict(
        name="brvlan", vlan_filtering=True, default_pvid=1, addresses=["10.10.0.1/24"], vlans=["10"], pvid=10,
        ports=[
            {"name": "vnet0", "vlans": ["10", "20-29"]},
            {"name": "vnet1", "pvid": 10},
            {"name": "eno1.30", "vlan_parent": "eno1"},
        ],
    )),
}


def rendered(scenario, persister):
    fixture, params = SCENARIOS[scenario]
    wanted, state = want(**params), host(fixture)
    config = persist_config(wanted, state, plan(wanted, state))
    return dict((os.path.relpath(path, "/cfg"), text) for path, text in persist.render(persister, config, "/cfg").items())


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("persister", persist.PERSISTERS)
def test_render_matches_golden(scenario, persister):
    files = rendered(scenario, persister)
    directory = GOLDEN / persister / scenario
    if os.environ.get("HNET_REGEN_GOLDEN"):
        for name, text in files.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text)
    on_disk = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    assert sorted(files) == on_disk
    for name, text in files.items():
        assert text == (directory / name).read_text(), name


def test_files_name_their_bridge_and_ports():
    for persister in persist.PERSISTERS:
        for name, text in rendered("vlan", persister).items():
            if name.startswith("10-hnet-link-") and name.endswith(".network"):
                continue  # one per link, shared by every bridge that uses the link
            assert persist.read_header(text) == ("brvlan", ["vnet0", "vnet1", "eno1.30"]), name


def test_claims_come_from_other_bridges_files():
    texts = dict(rendered("vlan", "networkd"))
    assert claims(texts, "br0")["vnet1"] == "brvlan"
    assert claims(texts, "brvlan") == {}


def test_choose_backend():
    assert persist.choose_persister("auto", {"networkd", "ifupdown"})[0] == "networkd"
    assert persist.choose_persister("auto", {"networkmanager", "networkd"})[0] == "networkmanager"
    assert persist.choose_persister("auto", set()) == ("none", "persist: auto found no active network manager; the bridge is runtime only")
    assert persist.choose_persister("ifupdown", {"networkd"})[0] == "ifupdown"


def test_names_unsafe_for_config_files_are_refused():
    config = persist.BridgeConfig(name="br$x")
    with pytest.raises(ValidationError) as caught:
        persist.check_names(config, "ifupdown")
    assert caught.value.field == "name"
