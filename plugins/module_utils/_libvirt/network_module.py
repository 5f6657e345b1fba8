# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt_network module's argument spec and its run: validate, gather, plan, apply, report."""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import conn as conn_util
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_model import network_from_params
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_plan import plan
from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

_STR = dict(type="str")
_INT = dict(type="int")
_BOOL = dict(type="bool")


def _dicts(**options):
    return dict(type="list", elements="dict", options=options)


ARGUMENT_SPEC = dict(
    uri=dict(type="str", default="qemu:///system"),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    active=dict(type="bool", default=True),
    autostart=dict(type="bool"),
    restart=dict(type="bool", default=True),
    forward=dict(
        type="dict",
        options=dict(
            mode=dict(type="str", choices=["nat", "route", "open", "bridge", "isolated"], default="nat"),
            dev=_STR, nat_address_start=_STR, nat_address_end=_STR, nat_port_start=_INT, nat_port_end=_INT,
        ),
    ),
    bridge=dict(type="dict", options=dict(name=_STR, stp=_BOOL, delay=_INT)),
    mtu=_INT,
    mac=_STR,
    domain=_STR,
    domain_local_only=_BOOL,
    ips=_dicts(
        address=dict(type="str", required=True),
        prefix=_INT,
        dhcp_ranges=_dicts(
            start=dict(type="str", required=True), end=dict(type="str", required=True),
            lease_expiry=_INT, lease_unit=dict(type="str", choices=["seconds", "minutes", "hours"]),
        ),
        dhcp_hosts=_dicts(mac=_STR, name=_STR, ip=dict(type="str", required=True)),
    ),
    dns=dict(
        type="dict",
        options=dict(
            enable=_BOOL,
            forward_plain_names=_BOOL,
            forwarders=_dicts(domain=_STR, addr=_STR, port=_INT),
            hosts=_dicts(ip=dict(type="str", required=True), hostnames=dict(type="list", elements="str", required=True)),
            srv=_dicts(
                service=dict(type="str", required=True), protocol=dict(type="str", default="tcp"),
                domain=_STR, target=_STR, port=_INT, priority=_INT, weight=_INT,
            ),
            txt=_dicts(name=dict(type="str", required=True), value=dict(type="str", required=True)),
        ),
    ),
    dnsmasq_options=dict(type="list", elements="str"),
)


def _state_dict(network, active, autostart):
    return {} if network is None else dict(network.to_dict(), active=active, autostart=autostart)


def run(module):
    params = module.params
    want = network_from_params(params)  # validation first: nothing is touched on bad input
    runner = Runner(module)
    uri = params["uri"]
    conn = conn_util.connect(uri)
    try:
        with host_lock():
            have = conn_util.gather(conn, uri, want.name, runner)
            result = plan(want, have, params["state"], params["active"], params["autostart"], params["restart"])
            reattached = conn_util.apply_steps(conn, uri, result.steps, runner)
    finally:
        conn.close()
    before = have.config or have.live
    present = params["state"] == "present"
    return build_result(
        module, result.steps, runner.commands, _state_dict(before, have.active, have.autostart),
        after=_state_dict(result.target, present and params["active"], result.autostart),
        # the whole definition as libvirt has it, before and after
        diff=dict(before=result.before_xml + "\n" if result.before_xml else "",
                  after=result.after_xml + "\n" if result.after_xml else ""),
        restarted=result.restarted,
        reattached=reattached,
        notes=list(result.notes),
    )
