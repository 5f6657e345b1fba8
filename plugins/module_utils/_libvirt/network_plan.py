# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planner for libvirt_network: (want, have) -> ordered steps. No libvirt, no host.

Live changes go through virNetworkUpdate where libvirt supports them (DHCP hosts and ranges, DNS
hosts, TXT and SRV records); anything else is a redefine, which on an active network only takes
effect after a restart, so the plan then restarts (if allowed) and re-attaches the bridge ports.
A redefine is the existing definition's XML edited in place (_libvirt/network_edit), so whatever
the model does not cover survives it.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import network_edit
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import network_xml as netxml
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_model import Dns, Forward, Network

# virNetworkUpdate sections, by the names virsh uses (libvirt's enum values are in _libvirt/conn).
DHCP_HOST, DHCP_RANGE = "ip-dhcp-host", "ip-dhcp-range"
DNS_HOST, DNS_TXT, DNS_SRV = "dns-host", "dns-txt", "dns-srv"


@dataclasses.dataclass(frozen=True)
class HostState:
    """What the host has for one network name (all None/False/() if it is not defined)."""

    config: Optional[Network] = None  # the persistent definition
    live: Optional[Network] = None  # what runs now, if active
    active: bool = False
    autostart: bool = False
    ports: Tuple[str, ...] = ()  # interfaces enslaved to the network's bridge now
    config_xml: Optional[str] = None  # the persistent definition as libvirt printed it
    live_xml: Optional[str] = None

    @property
    def base_xml(self):
        """The XML a redefine starts from: the persistent definition, or a transient network's."""
        return self.config_xml if self.config is not None else self.live_xml


def host_state(config_xml=None, live_xml=None, active=False, autostart=False, ports=()):
    """A HostState from the XML libvirt printed (the persistent and the running definition)."""
    return HostState(
        config=netxml.parse(config_xml) if config_xml else None,
        live=netxml.parse(live_xml) if live_xml else None,
        active=active, autostart=autostart, ports=tuple(ports), config_xml=config_xml, live_xml=live_xml,
    )


@dataclasses.dataclass(frozen=True)
class Step:
    action: str  # define, undefine, start, destroy, update, autostart, reattach
    name: str
    xml: Optional[str] = None
    command: Optional[str] = None  # update: add-last or delete
    section: Optional[str] = None
    parent_index: int = -1
    live: bool = False  # update: also change the running network
    config: bool = True  # update: also change the persistent definition
    autostart: Optional[bool] = None
    ports: Tuple[str, ...] = ()
    bridge: Optional[str] = None

    def shown(self):
        """The step as a virsh-equivalent line for the result's ``commands``."""
        if self.action == "define":
            return "virsh net-define /dev/stdin <<'XML'\n%s\nXML" % self.xml
        if self.action == "update":
            flags = " --live" * self.live + " --config" * self.config
            index = " --parent-index %d" % self.parent_index if self.parent_index >= 0 else ""
            return "virsh net-update %s %s %s '%s'%s%s" % (self.name, self.command, self.section, self.xml, index, flags)
        if self.action == "autostart":
            return "virsh net-autostart %s%s" % (self.name, "" if self.autostart else " --disable")
        if self.action == "reattach":  # the executor records one ip link command per port instead
            return "ip link set PORT master %s  # for each of: %s" % (self.bridge, ", ".join(self.ports))
        return "virsh net-%s %s" % (self.action, self.name)


@dataclasses.dataclass(frozen=True)
class Plan:
    steps: Tuple[Step, ...]
    target: Optional[Network]  # the definition after the plan, None when absent
    restarted: bool = False
    reattached: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = ()
    before_xml: str = ""  # the definition before and after, one serialisation, for --diff
    after_xml: str = ""
    autostart: bool = False  # whether the network starts with libvirtd after the plan


def defaults_for(name):
    """What a new network gets for options the user did not set (libvirt fills in the rest)."""
    return Network(name=name, forward=Forward(mode="nat"), ips=(), dns=Dns(), dnsmasq_options=())


def effective(want: Network, base: Network):
    """``want`` with every option the user did not set taken from ``base`` (have or defaults)."""
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Network) if getattr(want, f.name) is None}
    fields["uuid"] = base.uuid
    forward = want.forward
    if forward is not None and base.forward is not None and forward.mode == base.forward.mode:
        keep = {k: v for k, v in dataclasses.asdict(base.forward).items() if getattr(forward, k) is None}
        fields["forward"] = dataclasses.replace(forward, **keep)
    dns = want.dns
    if dns is not None:  # what the user left unset inside dns is kept too
        have_dns = base.dns or Dns()
        fields["dns"] = dataclasses.replace(dns, **{
            f.name: getattr(have_dns, f.name) for f in dataclasses.fields(Dns) if getattr(dns, f.name) is None
        })
    if (fields.get("forward") or forward).mode == "bridge":
        # libvirt ignores STP and delay of a host bridge it does not own
        fields.update(stp=base.stp, delay=base.delay)
    return dataclasses.replace(want, **fields)


def _without_live_sections(net: Network):
    ips = tuple(dataclasses.replace(ip, dhcp_hosts=(), dhcp_ranges=()) for ip in net.ips or ())
    dns = dataclasses.replace(net.dns or Dns(), hosts=(), txts=(), srvs=())
    return dataclasses.replace(net, ips=ips, dns=dns)


def _list_changes(section, old, new, element, parent_index=-1):
    deletes = [("delete", section, parent_index, element(i)) for i in old if i not in new]
    adds = [("add-last", section, parent_index, element(i)) for i in new if i not in old]
    return deletes, adds


def live_updates(old: Network, new: Network):
    """The virNetworkUpdate calls that turn ``old`` into ``new``, or None if some change needs a
    redefine (anything outside DHCP hosts/ranges and DNS hosts/TXT/SRV, or DHCP switched on/off)."""
    if _without_live_sections(old) != _without_live_sections(new):
        return None
    host_deletes, host_adds, range_adds, range_deletes = [], [], [], []
    for index, (before, after) in enumerate(zip(old.ips, new.ips)):
        if bool(before.dhcp_ranges) != bool(after.dhcp_ranges) or bool(before.dhcp_hosts or before.dhcp_ranges) != bool(
            after.dhcp_hosts or after.dhcp_ranges
        ):
            return None
        deletes, adds = _list_changes(DHCP_HOST, before.dhcp_hosts, after.dhcp_hosts, netxml.dhcp_host_element, index)
        host_deletes += deletes
        host_adds += adds
        deletes, adds = _list_changes(DHCP_RANGE, before.dhcp_ranges, after.dhcp_ranges, netxml.dhcp_range_element, index)
        range_deletes += deletes
        range_adds += adds
    dns_old, dns_new = old.dns or Dns(), new.dns or Dns()
    dns_steps = []
    for section, attr, element in (
        (DNS_HOST, "hosts", netxml.dns_host_element),
        (DNS_TXT, "txts", netxml.dns_txt_element),
        (DNS_SRV, "srvs", netxml.dns_srv_element),
    ):
        deletes, adds = _list_changes(section, getattr(dns_old, attr), getattr(dns_new, attr), element)
        dns_steps += deletes + adds
    # Hosts leave before new ones come (a MAC may move to another IP); a range is added before an
    # old one goes, so the network never has none.
    return host_deletes + range_adds + range_deletes + host_adds + dns_steps


def plan(want: Network, have: HostState, state="present", active=True, autostart=None, restart=True):
    name = want.name
    if state == "absent":
        steps = []
        if have.active:
            steps.append(Step("destroy", name))
        if have.config is not None:
            steps.append(Step("undefine", name))
        before_xml = network_edit.pretty(have.base_xml) if have.base_xml else ""
        return Plan(tuple(steps), None, before_xml=before_xml)

    steps, notes = [], []
    base = have.config or have.live
    target = effective(want, base or defaults_for(name))
    # A running network whose live state differs from its definition has a redefine pending.
    pending = have.active and have.config is not None and have.live is not None and have.live != have.config
    needs_restart = pending
    before_xml = network_edit.pretty(have.base_xml) if base is not None else ""
    if base is None:
        after_xml = netxml.render(target)
    elif target != base:
        after_xml = network_edit.edit(have.base_xml, base, target)  # refuses to lose what it does not own
    else:
        after_xml = before_xml
    if base is None or target != base:
        updates = None if base is None or pending else live_updates(base, target)
        if updates is not None:
            for command, section, parent_index, element in updates:
                steps.append(
                    Step(
                        "update", name, xml=netxml.to_text(element), command=command, section=section,
                        parent_index=parent_index, live=have.active, config=have.config is not None,
                    )
                )
        else:
            steps.append(Step("define", name, xml=after_xml))
            needs_restart = needs_restart or have.active

    restarted, reattached = False, ()
    if have.active and active is False:
        steps.append(Step("destroy", name))
    elif needs_restart and restart:
        bridge = target.bridge or (have.live.bridge if have.live else None)
        reattached = tuple(have.ports)
        steps += [Step("destroy", name), Step("start", name)]
        if reattached:
            steps.append(Step("reattach", name, ports=reattached, bridge=bridge))
        restarted = True
        notes.append(
            "network %s was restarted to apply a change libvirt cannot make live; re-attached its bridge ports: %s"
            % (name, ", ".join(reattached) or "none")
        )
    elif needs_restart:
        notes.append("network %s is defined with the change but still runs the old definition; it needs a restart (restart=false)" % name)
    elif not have.active and active:
        steps.append(Step("start", name))
    if autostart is None:  # left as it is; a new network starts with libvirtd
        autostart = have.autostart if base is not None else True
    if bool(autostart) != have.autostart:
        steps.append(Step("autostart", name, autostart=bool(autostart)))
    return Plan(
        tuple(steps), target, restarted=restarted, reattached=reattached, notes=tuple(notes),
        before_xml=before_xml, after_xml=after_xml, autostart=bool(autostart),
    )
