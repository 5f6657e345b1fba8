# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""virtualbox_hostonlynet's pure parts: the list layout, input checks and the planner."""

from __future__ import annotations

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils import _virtualbox_hostonlynet as hon
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError, ValidationError

# The layout of VBoxManageList.cpp's host-only network listing (written from the source, not captured):
# a blank line after GUID and after each block.
LISTING = """Name:            lab hostonly
GUID:            3f0c1a2e-9b51-4d57-8a43-5b0c7e1d2f60

State:           Enabled
NetworkMask:     255.255.255.0
LowerIP:         192.168.60.2
UpperIP:         192.168.60.199
VBoxNetworkName: hostonly-lab hostonly

Name:            off: with a colon
GUID:            0a1b2c3d-0000-4000-8000-000000000001

State:           Disabled
NetworkMask:     255.255.0.0
LowerIP:         10.66.0.10
UpperIP:         10.66.0.20
VBoxNetworkName: hostonly-off: with a colon

"""

PARAMS = {"name": "lab hostonly", "state": "present", "netmask": "255.255.255.0", "lower_ip": "192.168.60.2",
          "upper_ip": "192.168.60.199", "enabled": True}


def test_parse_reads_every_block():
    nets = hon.parse_hostonlynets(LISTING)
    assert nets["lab hostonly"] == hon.HostOnlyNet("lab hostonly", "255.255.255.0", "192.168.60.2", "192.168.60.199",
                                                   True, "3f0c1a2e-9b51-4d57-8a43-5b0c7e1d2f60")
    assert nets["off: with a colon"].enabled is False and nets["off: with a colon"].netmask == "255.255.0.0"
    assert hon.parse_hostonlynets("") == {}


def test_parse_refuses_what_it_cannot_read():
    with pytest.raises(HypervisorNetworkError, match="State"):
        hon.parse_hostonlynets("Name: a\nState: Maybe\n")
    with pytest.raises(HypervisorNetworkError, match="before any Name"):
        hon.parse_hostonlynets("LowerIP: 10.0.0.1\n")


def test_plan_create_modify_remove_and_nothing():
    want = hon.want_from_params(PARAMS)
    assert hon.plan(want, None, "present") == [[
        "VBoxManage", "hostonlynet", "add", "--name=lab hostonly", "--netmask=255.255.255.0",
        "--lower-ip=192.168.60.2", "--upper-ip=192.168.60.199", "--enable"]]
    have = hon.parse_hostonlynets(LISTING)["lab hostonly"]
    assert hon.plan(want, have, "present") == []
    want = hon.want_from_params(dict(PARAMS, netmask="255.255.0.0", enabled=False))
    assert hon.plan(want, have, "present") == [[
        "VBoxManage", "hostonlynet", "modify", "--name=lab hostonly", "--netmask=255.255.0.0", "--disable"]]
    gone = hon.want_from_params({"name": "lab hostonly", "state": "absent"})
    assert hon.plan(gone, have, "absent") == [["VBoxManage", "hostonlynet", "remove", "--name=lab hostonly"]]
    assert hon.plan(gone, None, "absent") == []


def test_a_name_that_looks_like_an_option_stays_a_value():
    want = hon.want_from_params(dict(PARAMS, name="--disable"))
    assert hon.plan(want, None, "present")[0][3] == "--name=--disable"


@pytest.mark.parametrize("change, field", [
    (dict(netmask="255.255.255.253"), "netmask"), (dict(netmask="0.0.0.0"), "netmask"),
    (dict(lower_ip="192.168.60.0"), "lower_ip"), (dict(lower_ip="fe80::1"), "lower_ip"),
    (dict(upper_ip=None), "upper_ip"), (dict(name=""), "name"), (dict(name=5), "name"),
])
def test_bad_input(change, field):
    with pytest.raises(ValidationError) as err:
        hon.want_from_params(dict(PARAMS, **change))
    assert err.value.field == field
