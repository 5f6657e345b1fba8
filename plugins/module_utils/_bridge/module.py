# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridge module's entry: its argument spec and run(module): want, have (under the host lock),
plan, apply, persist, result."""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils import _validate
from ansible_collections.hypervisor.network.plugins.module_utils._bridge import apply, persist
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.model import summary, want_from_params
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.plan import plan, validate_against_host
from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

_VLAN_OPTIONS = dict(vlans=dict(type="list", elements="str"), pvid=dict(type="int"), untagged=dict(type="list", elements="str"))

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    ports=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True),
        vlan_parent=dict(type="str"),
        vlan_id=dict(type="int"),
        **_VLAN_OPTIONS
    )),
    exclusive_ports=dict(type="bool", default=False),
    steal=dict(type="bool", default=False),
    stp=dict(type="bool"),
    forward_delay=dict(type="int"),
    ageing_time=dict(type="int"),
    mtu=dict(type="int"),
    mac=dict(type="str"),
    addresses=dict(type="list", elements="str"),
    vlan_filtering=dict(type="bool"),
    default_pvid=dict(type="int"),
    persist=dict(type="str", choices=["auto", "networkd", "networkmanager", "ifupdown", "none"], default="auto"),
    networkd_dir=dict(type="path", default="/etc/systemd/network"),
    networkmanager_dir=dict(type="path", default="/etc/NetworkManager/system-connections"),
    ifupdown_dir=dict(type="path", default="/etc/network/interfaces.d"),
    uplink_check_target=dict(type="str"),
    uplink_check_timeout=dict(type="int", default=30),
    **_VLAN_OPTIONS
)


def run(module):
    runner = Runner(module)
    params = module.params
    want = want_from_params(params)
    if params.get("uplink_check_target"):
        _validate.address("uplink_check_target", params["uplink_check_target"])
    persister, reason = persist.choose_persister(params["persist"], apply.active_managers())
    directory = params.get("%s_dir" % persister)
    with host_lock():
        host = apply.gather(runner)
        existing = apply.our_files(directory) if directory else {}
        validate_against_host(want, host, apply.claims(existing, want.name))
        the_plan = plan(want, host, apply.own_ports(existing, want.name))
        config = apply.persist_config(want, host, the_plan)
        files = {}
        if directory and want.state == "present":
            persist.check_names(config, persister)
            files = persist.render(persister, config, directory)
        before = summary(host, want.name)
        uplink = apply.apply_plan(runner, the_plan, params)
        file_diffs = apply.write_files(runner, persister, directory, want.name, files, existing) if directory else []
        after = apply.predicted_after(want, before, the_plan) if runner.check_mode else summary(apply.gather(runner), want.name)
    extra = dict(persist=persister, persist_reason=reason, files=sorted(files))
    if uplink:
        extra["uplink_check"] = uplink
    runtime_diff = {"before_header": "%s (runtime)" % want.name, "after_header": "%s (runtime)" % want.name,
                    "before": before, "after": after}
    return build_result(module, runner.commands, runner.commands, before, after=after, diff=[runtime_diff] + file_diffs, **extra)
