# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridge planner: checks the desired state against the host, then plan(want, host) gives the
ordered steps, typed (one small frozen dataclass per kind of change), each with the step that
reverts it. A step renders to its ``ip`` / ``bridge`` argv only when it is run or shown. Pure: it
reads the model and touches nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.hypervisor.network.plugins.module_utils._bridge.model import PORT_MARK, vlan_ranges
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

# What a new bridge starts with, so creation passes only the options that differ (a kernel built
# without VLAN filtering refuses even "vlan_filtering 0").
KERNEL_DEFAULTS = {"stp": False, "forward_delay": 15, "ageing_time": 300, "vlan_filtering": False, "default_pvid": 1}
# Routes the kernel or router advertisements maintain by themselves; moving them would be noise.
SELF_MAINTAINED_PROTOCOLS = ("kernel", "ra")


class _Step:
    """What every plan step offers: ``argv`` (and ``data``, standard input) rendered from its
    fields, and ``shown``, its line in the result's ``commands``."""

    data = None

    @property
    def argv(self):
        raise NotImplementedError

    @property
    def shown(self):
        if self.data is None:
            return " ".join(self.argv)
        return "%s <<< %s" % (" ".join(self.argv), "; ".join(self.data.strip().splitlines()))


@dataclass(frozen=True)
class AddVlanLink(_Step):
    """An 802.1Q sub-interface ``name`` of ``parent``."""

    name: str
    parent: str
    vid: int

    @property
    def argv(self):
        return ["ip", "link", "add", "link", self.parent, "name", self.name, "type", "vlan", "id", str(self.vid)]


@dataclass(frozen=True)
class BridgeOptions(_Step):
    """A new bridge (``add``) with the options that differ from the kernel's defaults, or options
    changed on an existing one."""

    name: str
    options: tuple = ()  # ((Link.bridge key, value), ...)
    add: bool = False

    @property
    def argv(self):
        head = ["ip", "link", "add", "name", self.name] if self.add else ["ip", "link", "set", "dev", self.name]
        return head + ["type", "bridge"] + _option_argv(self.options)


@dataclass(frozen=True)
class DeleteLink(_Step):
    name: str

    @property
    def argv(self):
        return ["ip", "link", "del", "dev", self.name]


@dataclass(frozen=True)
class SetLink(_Step):
    """One ``ip link set dev DEV`` attribute: mtu, address (the MAC), alias."""

    dev: str
    attribute: str
    value: str

    @property
    def argv(self):
        return ["ip", "link", "set", "dev", self.dev, self.attribute, str(self.value)]


@dataclass(frozen=True)
class SetUp(_Step):
    dev: str
    up: bool = True

    @property
    def argv(self):
        return ["ip", "link", "set", "dev", self.dev, "up" if self.up else "down"]


@dataclass(frozen=True)
class Enslave(_Step):
    port: str
    bridge: str

    @property
    def argv(self):
        return ["ip", "link", "set", "dev", self.port, "master", self.bridge]


@dataclass(frozen=True)
class Release(_Step):
    port: str

    @property
    def argv(self):
        return ["ip", "link", "set", "dev", self.port, "nomaster"]


@dataclass(frozen=True)
class Address(_Step):
    dev: str
    cidr: str
    add: bool = True

    @property
    def argv(self):
        return ["ip", "addr", "add" if self.add else "del", self.cidr, "dev", self.dev]


@dataclass(frozen=True)
class VlanEntry(_Step):
    """One ``bridge vlan`` change on a port, or on the bridge itself (``own``: ``self``)."""

    dev: str
    vids: str  # "10" or "20-29"
    add: bool = True
    pvid: bool = False
    untagged: bool = False
    own: bool = False

    @property
    def argv(self):
        flags = (["pvid"] if self.pvid else []) + (["untagged"] if self.untagged else []) + (["self"] if self.own else [])
        return ["bridge", "vlan", "add" if self.add else "del", "dev", self.dev, "vid", self.vids] + flags


@dataclass(frozen=True)
class UplinkMove:
    """A port that carries the host's addresses or routes: they go to the bridge in one batch."""

    port: str
    addresses: tuple
    routes: tuple
    gateway: str = None  # a default gateway it carried: the default reachability target


@dataclass(frozen=True)
class MoveUplink(_Step):
    """The uplink ``move`` onto ``bridge`` in one ``ip -batch`` (``back``: from the bridge to the
    port again, going on past errors, so a batch that stopped halfway is undone too). It can stop
    halfway, so its own undo belongs to a rollback even when it failed."""

    move: UplinkMove
    bridge: str
    back: bool = False

    @property
    def argv(self):
        return ["ip", "-force", "-batch", "-"] if self.back else ["ip", "-batch", "-"]

    @property
    def data(self):
        port, bridge = self.move.port, self.bridge
        source, target = (bridge, port) if self.back else (port, bridge)
        lines = ["link set dev %s nomaster" % port] if self.back else ["link set dev %s master %s" % (port, bridge)]
        # Deleting a primary IPv4 address drops its secondaries, so delete from the last one up.
        lines += ["addr del %s dev %s" % (cidr, source) for cidr in reversed(self.move.addresses)]
        # The address was in use on this very segment a moment ago: no need to wait for DAD.
        lines += ["addr add %s dev %s%s" % (cidr, target, " nodad" if ":" in cidr else "") for cidr in self.move.addresses]
        lines += ["route replace %s" % " ".join(route_spec(route, target)) for route in self.move.routes]
        return "\n".join(lines) + "\n"


@dataclass
class Plan:
    steps: list = field(default_factory=list)
    undos: list = field(default_factory=list)  # per step, the step that reverts it, or None
    moves: list = field(default_factory=list)
    created: bool = False

    def add(self, step, undo=None):
        self.steps.append(step)
        self.undos.append(undo)

    def undo(self, done=None):
        """The steps that revert the first ``done`` steps (all by default), newest first. VLAN
        table changes have none: the tables stay as the run left them."""
        done = len(self.steps) if done is None else done
        return [undo for undo in reversed(self.undos[:done]) if undo is not None]

    @property
    def rollback(self):
        return self.undo()

    def released(self):
        """The ports the plan takes off the bridge."""
        return [step.port for step in self.steps if isinstance(step, Release)]


def validate_against_host(want, host, claims=None):
    """Refuse, naming the field, what the host cannot take. ``claims`` maps a port to the bridge
    whose persisted configuration already owns it."""
    bridge = host.links.get(want.name)
    if bridge is not None and bridge.kind != "bridge":
        raise ValidationError("name", want.name, "an interface of this name exists and is a %s, not a bridge" % (bridge.kind or "plain link"))
    if want.state == "absent":
        return
    for index, port in enumerate(want.ports or []):
        prefix = "ports[%d]" % index
        link = host.links.get(port.name)
        if link is None:
            if port.vlan_parent is None:
                raise ValidationError(prefix + ".name", port.name, "no such interface (give vlan_parent to create a VLAN sub-interface)")
            parent = host.links.get(port.vlan_parent)
            if parent is None:
                raise ValidationError(prefix + ".vlan_parent", port.vlan_parent, "no such interface")
            if want.mtu and parent.mtu and want.mtu > parent.mtu:
                reason = "a VLAN sub-interface cannot exceed the MTU %s of %s, and mtu is %s" % (parent.mtu, parent.name, want.mtu)
                raise ValidationError(prefix + ".name", port.name, reason)
            continue
        if port.vlan_parent and (link.kind != "vlan" or link.vlan_parent != port.vlan_parent or link.vlan_id != port.vlan_id):
            raise ValidationError(prefix + ".name", port.name, "exists but is not VLAN %s on %s" % (port.vlan_id, port.vlan_parent))
        if link.kind == "bridge":
            raise ValidationError(prefix + ".name", port.name, "is a bridge; a bridge cannot be a port of another bridge")
        claimed_by = (claims or {}).get(port.name)
        marked_for = link.alias[len(PORT_MARK):] if link.alias and link.alias.startswith(PORT_MARK) else None
        for owner in (claimed_by, marked_for):
            if owner and owner != want.name:
                reason = "is claimed by bridge %s managed by this collection; remove it from that bridge's ports first" % owner
                raise ValidationError(prefix + ".name", port.name, reason)
        if link.master and link.master != want.name and not want.steal:
            raise ValidationError(prefix + ".name", port.name, "is already a port of %s (set steal: true to move it)" % link.master)
        if want.mtu and link.max_mtu and not link.min_mtu <= want.mtu <= link.max_mtu:
            raise ValidationError("mtu", want.mtu, "port %s takes an MTU of %s-%s only" % (port.name, link.min_mtu, link.max_mtu))
        lower = host.links.get(link.lower) if link.lower else None
        if want.mtu and lower is not None and lower.mtu and want.mtu > lower.mtu - link.headroom:
            raise ValidationError("mtu", want.mtu, "port %s is a %s on %s and takes an MTU of %s at most (%s's MTU is %s)"
                                  % (port.name, link.kind, lower.name, lower.mtu - link.headroom, lower.name, lower.mtu))


def plan(want, host, persisted_ports=()):
    """The ordered commands that take ``host`` to ``want``. ``persisted_ports`` are the ports this
    bridge's own boot configuration lists: a boot enslaves them without the runtime mark (an
    ifalias, which no network manager writes), and they count as marked, so the first run after
    a reboot has nothing to do."""
    result = Plan()
    if want.state == "absent":
        _plan_absent(want, host, result)
        return result
    bridge = host.links.get(want.name)
    result.created = bridge is None
    _plan_vlan_links(want, host, result)
    _plan_bridge_link(want, bridge, result)
    members = set(host.ports_of(want.name))
    _plan_release(want, host, members, result, persisted_ports)
    for port in want.ports or []:
        link = host.links.get(port.name)
        if want.mtu and (link is None or link.mtu != want.mtu):
            result.add(SetLink(port.name, "mtu", want.mtu), undo=SetLink(port.name, "mtu", link.mtu) if link else None)
    if bridge is None or not bridge.up:
        result.add(SetUp(want.name), undo=SetUp(want.name, up=False) if bridge else None)
    moved_addresses = _plan_ports(want, host, members, result, persisted_ports)
    if want.mtu and (bridge is None or bridge.mtu != want.mtu):
        result.add(SetLink(want.name, "mtu", want.mtu), undo=SetLink(want.name, "mtu", bridge.mtu) if bridge else None)
    _plan_vlan_tables(want, host, members, result)
    _plan_addresses(want, bridge, moved_addresses, result)
    return result


def _plan_absent(want, host, result):
    bridge = host.links.get(want.name)
    mark = PORT_MARK + want.name
    for name in sorted(host.links):
        if host.links[name].alias == mark:
            result.add(SetLink(name, "alias", ""))
    if bridge is not None:
        result.add(DeleteLink(want.name))
    for port in want.ports or []:
        link = host.links.get(port.name)
        if port.vlan_parent and link is not None and link.kind == "vlan":
            result.add(DeleteLink(port.name))


def _plan_vlan_links(want, host, result):
    for port in want.ports or []:
        if port.vlan_parent and port.name not in host.links:
            result.add(AddVlanLink(port.name, port.vlan_parent, port.vlan_id), undo=DeleteLink(port.name))


_BRIDGE_OPTIONS = (("stp", "stp_state"), ("forward_delay", "forward_delay"), ("ageing_time", "ageing_time"),
                   ("vlan_filtering", "vlan_filtering"), ("default_pvid", "vlan_default_pvid"))
_CENTISECONDS = ("forward_delay", "ageing_time")  # given in seconds, the kernel counts 1/100 s


def _option_argv(options):
    """``type bridge`` arguments for ((Link.bridge key, value), ...)."""
    values = dict(options)
    argv = []
    for key, option in _BRIDGE_OPTIONS:
        if values.get(key) is not None:
            value = values[key]
            if key in _CENTISECONDS:
                value *= 100
            argv += [option, str(int(value))]
    return argv


def _bridge_changes(want, current):
    """((key, wanted value), ...) for the bridge settings that differ from ``current`` (a Link.bridge dict)."""
    return tuple((key, getattr(want, key)) for key, _option in _BRIDGE_OPTIONS
                 if getattr(want, key) is not None and current.get(key) != getattr(want, key))


def _plan_bridge_link(want, bridge, result):
    if bridge is None:
        result.add(BridgeOptions(want.name, _bridge_changes(want, KERNEL_DEFAULTS), add=True), undo=DeleteLink(want.name))
    else:
        changes = _bridge_changes(want, bridge.bridge)
        if changes:
            old = tuple((key, bridge.bridge.get(key)) for key, _value in changes if bridge.bridge.get(key) is not None)
            result.add(BridgeOptions(want.name, changes), undo=BridgeOptions(want.name, old) if old else None)
    if want.mac and (bridge is None or bridge.mac != want.mac):
        result.add(SetLink(want.name, "address", want.mac), undo=SetLink(want.name, "address", bridge.mac) if bridge else None)


def _plan_release(want, host, members, result, persisted_ports=()):
    if want.ports is None:
        return
    mark = PORT_MARK + want.name
    for name in sorted(members - set(want.port_names())):
        link = host.links[name]
        booted_in = not link.alias and name in persisted_ports
        if want.exclusive_ports or link.alias == mark or booted_in:
            result.add(Release(name), undo=Enslave(name, want.name))
        if link.alias == mark:
            result.add(SetLink(name, "alias", ""), undo=SetLink(name, "alias", mark))


def _routes_on(host, port):
    routes = []
    for route in host.routes:
        dst = route.get("dst", "")
        if route.get("dev") != port or route.get("protocol") in SELF_MAINTAINED_PROTOCOLS:
            continue
        if dst.startswith("fe80") or dst.startswith("ff00") or route.get("type") in ("multicast", "broadcast", "local"):
            continue
        routes.append(route)
    return routes


def route_spec(route, dev):
    spec = [route.get("dst", "default")]
    if route.get("gateway"):
        spec += ["via", route["gateway"]]
    spec += ["dev", dev]
    if route.get("protocol") and route["protocol"] not in ("boot",):
        spec += ["proto", str(route["protocol"])]
    if route.get("metric"):
        spec += ["metric", str(route["metric"])]
    return spec


def _uplink_move(want, host, port):
    link = host.links.get(port.name)
    if link is None:
        return None
    routes = _routes_on(host, port.name)
    if not link.addresses and not routes:
        return None
    gateways = [r["gateway"] for r in routes if r.get("dst") == "default" and r.get("gateway")]
    gateways.sort(key=lambda gw: ":" in gw)  # IPv4 first
    return UplinkMove(port=port.name, addresses=tuple(link.addresses), routes=tuple(routes), gateway=(gateways or [None])[0])


def _plan_ports(want, host, members, result, persisted_ports=()):
    """Enslave the wanted ports; the ones carrying the host's addresses or routes in one batch.
    Returns the addresses that a move puts on the bridge."""
    moved = []
    mark = PORT_MARK + want.name
    for port in want.ports or []:
        link = host.links.get(port.name)
        if port.name not in members:
            move = _uplink_move(want, host, port)
            if move:
                result.moves.append(move)
                result.add(MoveUplink(move, want.name), undo=MoveUplink(move, want.name, back=True))
                moved += move.addresses
            else:
                result.add(Enslave(port.name, want.name), undo=Release(port.name))
        booted_in = port.name in members and port.name in persisted_ports
        if (link is None or not link.alias) and not booted_in:
            result.add(SetLink(port.name, "alias", mark), undo=SetLink(port.name, "alias", ""))
        if link is None or not link.up:
            result.add(SetUp(port.name), undo=SetUp(port.name, up=False) if link else None)
    return moved


def _table_after_join(want, host):
    """The VLAN table the kernel gives a port when it joins: the default PVID, egress untagged."""
    bridge = host.links.get(want.name)
    default = want.default_pvid
    if default is None:
        default = bridge.bridge.get("default_pvid") if bridge is not None else None
    if default is None:
        default = 1
    return {default: (True, True)} if default else {}


def vlan_table_steps(dev, have, want_table, own):
    """VlanEntry steps taking ``have`` {vid: (pvid, untagged)} to ``want_table``."""
    steps = [VlanEntry(dev, text, add=False, own=own) for text in vlan_ranges(vid for vid in have if vid not in want_table)]
    changed = [vid for vid, flags in want_table.items() if have.get(vid) != flags]
    plain = [vid for vid in changed if want_table[vid] == (False, False)]
    steps += [VlanEntry(dev, text, own=own) for text in vlan_ranges(plain)]
    for vid in sorted(set(changed) - set(plain)):
        is_pvid, untagged = want_table[vid]
        steps.append(VlanEntry(dev, str(vid), pvid=is_pvid, untagged=untagged, own=own))
    return steps


def _plan_vlan_tables(want, host, members, result):
    if not want.vlan_filtering:
        return
    joined = _table_after_join(want, host)
    bridge = host.links.get(want.name)
    old_default = bridge.bridge.get("default_pvid") if bridge is not None else None
    for port in want.ports or []:
        if port.vlans is None:
            continue
        have = dict(host.vlans.get(port.name, {})) if port.name in members else dict(joined)
        _follow_default_pvid(have, old_default, want.default_pvid)
        for step in vlan_table_steps(port.name, have, port.vlans, own=False):
            result.add(step)
    if want.vlans is not None:
        have = dict(host.vlans.get(want.name, {})) if bridge is not None else dict(joined)
        _follow_default_pvid(have, old_default, want.default_pvid)
        for step in vlan_table_steps(want.name, have, want.vlans, own=True):
            result.add(step)


def _follow_default_pvid(table, old, new):
    """The kernel moves entries that still hold the old default PVID to the new one."""
    if old is None or new is None or old == new or table.get(old) != (True, True):
        return
    del table[old]
    if new and new not in table:
        table[new] = (True, True)


def _plan_addresses(want, bridge, moved, result):
    if want.addresses is None:
        return
    have = set(bridge.addresses if bridge is not None else []) | set(moved)
    for cidr in sorted(have - set(want.addresses)):
        result.add(Address(want.name, cidr, add=False), undo=Address(want.name, cidr))
    for cidr in want.addresses:
        if cidr not in have:
            result.add(Address(want.name, cidr), undo=Address(want.name, cidr, add=False))
