# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VirtualBox NAT networks through VBoxManage: model, parser, validation, planner, apply.

VBoxManage has no machine-readable output for NAT networks, so the parser reads the two text
layouts that VirtualBox prints (see ``parse_natnetworks``). Everything else is pure and tested
from captured examples; only ``gather`` and ``run`` touch the host, through the Runner.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field

from ansible_collections.hypervisor.network.plugins.module_utils import _validate
from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    HypervisorNetworkError,
    ValidationError,
)
from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

_FORWARD_OPTIONS = dict(
    name=dict(type="str", required=True),
    protocol=dict(type="str", choices=["tcp", "udp"], default="tcp"),
    host_ip=dict(type="str", default=""),
    host_port=dict(type="int", required=True),
    guest_ip=dict(type="str", required=True),
    guest_port=dict(type="int", required=True),
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    network=dict(type="str"),
    enabled=dict(type="bool"),
    dhcp=dict(type="bool"),
    ipv6=dict(type="bool"),
    port_forwards=dict(type="list", elements="dict", options=_FORWARD_OPTIONS),
    loopback_mappings=dict(type="list", elements="dict", options=dict(
        address=dict(type="str", required=True),
        offset=dict(type="int", required=True),
    )),
)

VBOXMANAGE = "VBoxManage"
RULE_NAME_MAX = 63  # VirtualBox keeps rule names in a 64-byte buffer (PF_NAMELEN)
PROTOCOLS = ("tcp", "udp")
_RULE = re.compile(
    r"^(?P<name>.*):(?P<protocol>tcp|udp):\[(?P<host_ip>[^\]]*)\]:(?P<host_port>\d+)"
    r":\[(?P<guest_ip>[^\]]*)\]:(?P<guest_port>\d+)\Z",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 ]*?):\s*(?P<value>.*)\Z")
_LIST_HEADERS = {
    "port-forwarding (ipv4)": "forwards4",
    "port-forwarding (ipv6)": "forwards6",
    "loopback mappings (ipv4)": "loopbacks",
}
# Both spellings VirtualBox has used for the same facts: 7.x `natnetwork list` / 6.x `list natnets`.
_KEYS = {
    "name": "name", "networkname": "name",
    "network": "network",
    "gateway": "gateway", "ip": "gateway",
    "dhcp server": "dhcp", "dhcp enabled": "dhcp",
    "ipv6": "ipv6", "ipv6 enabled": "ipv6",
    "ipv6 prefix": "ipv6_prefix",
    "enabled": "enabled",
}
_BOOLEAN_KEYS = ("dhcp", "ipv6", "enabled")


@dataclass(frozen=True, order=True)
class PortForward:
    """One rule, in VirtualBox's own string form ``name:proto:[host ip]:host port:[guest ip]:guest port``."""

    name: str
    protocol: str
    host_ip: str
    host_port: int
    guest_ip: str
    guest_port: int

    @property
    def ipv6(self):
        return ":" in self.guest_ip

    def rule(self):
        return "%s:%s:[%s]:%d:[%s]:%d" % (
            self.name, self.protocol, self.host_ip, self.host_port, self.guest_ip, self.guest_port)

    def to_dict(self):
        return {"name": self.name, "protocol": self.protocol, "host_ip": self.host_ip,
                "host_port": self.host_port, "guest_ip": self.guest_ip, "guest_port": self.guest_port}


@dataclass
class NatNetwork:
    """A NAT network. ``None`` in a setting means "not managed" (want) or "not printed" (have)."""

    name: str
    network: str = None
    enabled: bool = None
    dhcp: bool = None
    ipv6: bool = None
    forwards: tuple = None  # sorted PortForward, IPv4 and IPv6 together
    loopbacks: tuple = None  # sorted (address, offset)
    gateway: str = None
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        return {
            "name": self.name, "network": self.network, "gateway": self.gateway,
            "enabled": self.enabled, "dhcp": self.dhcp, "ipv6": self.ipv6,
            "port_forwards": [fwd.to_dict() for fwd in self.forwards or ()],
            "loopback_mappings": [{"address": a, "offset": o} for a, o in self.loopbacks or ()],
        }


# -- parsing --------------------------------------------------------------------------------
def _normal_ip(text):
    return str(ipaddress.ip_address(text)) if text else ""


def parse_rule(text):
    """Parse one rule string; the name may hold spaces, host IP may be empty (all addresses)."""
    match = _RULE.match(text.strip())
    if not match:
        raise HypervisorNetworkError("VBoxManage printed a port-forward rule this module cannot read: %r" % text)
    try:
        return PortForward(
            name=match.group("name"), protocol=match.group("protocol").lower(),
            host_ip=_normal_ip(match.group("host_ip")), host_port=int(match.group("host_port")),
            guest_ip=_normal_ip(match.group("guest_ip")), guest_port=int(match.group("guest_port")))
    except ValueError as exc:
        raise HypervisorNetworkError("VBoxManage printed a port-forward rule with a bad address: %r (%s)" % (text, exc))


def _normal_network(text):
    try:
        return str(ipaddress.ip_network(text, strict=False)) if text else None
    except ValueError:
        return text  # shown as is in before/after; a wanted CIDR never equals it, so it is reset


def _parse_loopback(text):
    address, _sep, offset = text.strip().partition("=")
    if not offset.isdigit():
        raise HypervisorNetworkError("VBoxManage printed a loopback mapping this module cannot read: %r" % text)
    return address, int(offset)


def parse_natnetworks(text):
    """Parse ``VBoxManage natnetwork list`` (7.x) or ``VBoxManage list natnets`` (6.x) output.

    Returns {name: NatNetwork}. Both print ``Key:   value`` lines per network, then optional
    list headers (``Port-forwarding (ipv4)``...) with items indented by eight spaces. Names are
    taken verbatim after the padding, so names with spaces survive.
    """
    networks = {}
    current, raw, listing = None, {}, None

    def finish():
        if current is not None:
            networks[current.name] = _from_raw(current, raw)

    for line in text.splitlines():
        if not line.strip():
            listing = None
            continue
        if line[0] in " \t" and listing is not None:
            raw.setdefault(listing, []).append(line.strip())
            continue
        header = _LIST_HEADERS.get(line.strip().lower())
        if header:
            listing = header
            continue
        match = _KEY_VALUE.match(line)
        if not match:
            continue  # "NAT Networks:" title lines and "2 networks found" summaries
        key = _KEYS.get(match.group("key").strip().lower())
        if key is None:
            continue
        value = match.group("value").rstrip()
        if key == "name":
            finish()
            current, raw, listing = NatNetwork(name=value), {}, None
        elif current is not None:
            raw[key] = value
    finish()
    return networks


def _from_raw(network, raw):
    for key in _BOOLEAN_KEYS:
        if key in raw:
            setattr(network, key, raw[key].strip().lower() in ("yes", "true", "on", "1"))
    network.network = _normal_network(raw.get("network"))
    network.gateway = raw.get("gateway") or None
    network.forwards = tuple(sorted(parse_rule(r) for r in raw.get("forwards4", []) + raw.get("forwards6", [])))
    network.loopbacks = tuple(sorted(_parse_loopback(item) for item in raw.get("loopbacks", [])))
    return network


def is_complete(network):
    """6.x ``natnetwork list`` leaves out DHCP and the rules; then read ``list natnets`` instead."""
    return network.dhcp is not None


# -- validation -------------------------------------------------------------------------------
def _text(field_name, value, forbidden=""):
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValidationError(field_name, value, "must be a non-empty string without leading or trailing spaces")
    if not value.isprintable() or any(ch in value for ch in forbidden):
        raise ValidationError(field_name, value, "cannot contain control characters%s" % (
            " or any of %s" % " ".join(repr(ch) for ch in forbidden) if forbidden else ""))
    return value


def _port(field_name, value):
    low, high = _validate.port_range(field_name, value)
    if low != high:
        raise ValidationError(field_name, value, "VirtualBox forwards single ports, not ranges")
    return low


def want_from_params(params):
    """Validate module parameters into a NatNetwork; raises ValidationError before any change."""
    name = _text("name", params["name"])
    want = NatNetwork(name=name, enabled=params.get("enabled"), dhcp=params.get("dhcp"), ipv6=params.get("ipv6"))
    if params.get("state", "present") == "absent":
        return want
    if params.get("network") is None:
        raise ValidationError("network", None, "required with state=present (an IPv4 CIDR such as 10.0.2.0/24)")
    net = _validate.network("network", params["network"])
    if net.version != 4:
        raise ValidationError("network", params["network"], "a VirtualBox NAT network is an IPv4 CIDR")
    want.network = str(net)
    if params.get("port_forwards") is not None:
        want.forwards = tuple(sorted(_forwards(params["port_forwards"], net)))
    if params.get("loopback_mappings") is not None:
        want.loopbacks = tuple(sorted(_loopbacks(params["loopback_mappings"], net)))
    return want


def _forwards(items, net):
    seen_names, seen_ports, result = set(), set(), []
    for index, item in enumerate(items):
        where = "port_forwards[%d]" % index
        name = _text(where + ".name", item.get("name"), forbidden=":[]")
        if len(name.encode("utf-8")) > RULE_NAME_MAX:
            raise ValidationError(where + ".name", name, "VirtualBox keeps at most %d bytes of a rule name" % RULE_NAME_MAX)
        protocol = str(item.get("protocol") or "tcp").lower()
        if protocol not in PROTOCOLS:
            raise ValidationError(where + ".protocol", item.get("protocol"), "one of tcp, udp")
        guest = _validate.address(where + ".guest_ip", item.get("guest_ip"))
        host = _validate.address(where + ".host_ip", item["host_ip"]) if item.get("host_ip") else None
        if host is not None and host.version != guest.version:
            raise ValidationError(where + ".host_ip", item["host_ip"], "host_ip and guest_ip must both be IPv4 or both IPv6")
        if guest.version == 4 and guest not in net:
            raise ValidationError(where + ".guest_ip", item["guest_ip"], "not inside the NAT network %s" % net)
        forward = PortForward(name, protocol, str(host) if host else "", _port(where + ".host_port", item.get("host_port")),
                              str(guest), _port(where + ".guest_port", item.get("guest_port")))
        if (forward.ipv6, name) in seen_names:
            raise ValidationError(where + ".name", name, "two rules of one address family cannot share a name")
        listener = (forward.ipv6, protocol, forward.host_ip, forward.host_port)
        if listener in seen_ports:
            raise ValidationError(where + ".host_port", forward.host_port,
                                  "another rule already forwards %s port %s on host address %r" % (
                                      protocol, forward.host_port, forward.host_ip or "any"))
        seen_names.add((forward.ipv6, name))
        seen_ports.add(listener)
        result.append(forward)
    return result


def _loopbacks(items, net):
    seen, result = set(), []
    for index, item in enumerate(items):
        where = "loopback_mappings[%d]" % index
        address = _validate.address(where + ".address", item.get("address"))
        if address.version != 4 or not address.is_loopback:
            raise ValidationError(where + ".address", item.get("address"), "a host loopback address in 127.0.0.0/8")
        offset = item.get("offset")
        if not isinstance(offset, int) or isinstance(offset, bool) or not 1 <= offset < net.num_addresses - 1:
            raise ValidationError(where + ".offset", offset, "an offset inside %s (1 to %d)" % (net, net.num_addresses - 2))
        if str(address) in seen:
            raise ValidationError(where + ".address", str(address), "mapped twice")
        seen.add(str(address))
        result.append((str(address), offset))
    return result


# -- planning ---------------------------------------------------------------------------------
def _on_off(value):
    return "on" if value else "off"


def _forward_flag(forward):
    return "--port-forward-6" if forward.ipv6 else "--port-forward-4"


def plan(want, have, state):
    """Return the ordered VBoxManage argv lists that turn ``have`` (or None) into ``want``."""
    if state == "absent":
        return [[VBOXMANAGE, "natnetwork", "remove", "--netname", want.name]] if have else []
    if have is None:
        argv = [VBOXMANAGE, "natnetwork", "add", "--netname", want.name, "--network", want.network,
                "--enable" if want.enabled in (None, True) else "--disable",
                "--dhcp", _on_off(want.dhcp in (None, True)), "--ipv6", _on_off(bool(want.ipv6))]
        for forward in want.forwards or ():
            argv += [_forward_flag(forward), forward.rule()]
        for address, offset in want.loopbacks or ():
            argv += ["--loopback-4", "%s=%d" % (address, offset)]
        return [argv]
    options = []
    if want.network != have.network:
        options += ["--network", want.network]
    if want.dhcp is not None and want.dhcp != have.dhcp:
        options += ["--dhcp", _on_off(want.dhcp)]
    if want.ipv6 is not None and want.ipv6 != have.ipv6:
        options += ["--ipv6", _on_off(want.ipv6)]
    if want.forwards is not None:
        options += _forward_changes(want.forwards, have.forwards or ())
    if want.loopbacks is not None:
        options += _loopback_changes(want.loopbacks, have.loopbacks or ())
    if want.enabled is not None and want.enabled != have.enabled:
        options += ["--enable" if want.enabled else "--disable"]
    return [[VBOXMANAGE, "natnetwork", "modify", "--netname", want.name] + options] if options else []


def _forward_changes(wanted, existing):
    """Deletes first, then additions: VBoxManage also applies deletes before adds within one call,
    so a changed rule is a delete and an add of the same name in one command."""
    wanted_set, existing_set = set(wanted), set(existing)
    deletes, adds = [], []
    for forward in sorted(existing_set - wanted_set):
        deletes += [_forward_flag(forward), "delete", forward.name]
    for forward in sorted(wanted_set - existing_set):
        adds += [_forward_flag(forward), forward.rule()]
    return deletes + adds


def _loopback_changes(wanted, existing):
    wanted_map, existing_map = dict(wanted), dict(existing)
    options = []
    for address in sorted(set(existing_map) - set(wanted_map)):
        options += ["--loopback-4", "delete", address]
    for address, offset in sorted(wanted_map.items()):
        if existing_map.get(address) != offset:
            options += ["--loopback-4", "%s=%d" % (address, offset)]
    return options


def predict(want, have, state):
    """The state after the plan, for check mode and for ``after`` when nothing ran."""
    if state == "absent":
        return None
    after = NatNetwork(name=want.name, network=want.network, gateway=have.gateway if have else None)
    for key, default in (("enabled", True), ("dhcp", True), ("ipv6", False)):
        value = getattr(want, key)
        setattr(after, key, value if value is not None else (getattr(have, key) if have else default))
    after.forwards = want.forwards if want.forwards is not None else (have.forwards if have else ())
    after.loopbacks = want.loopbacks if want.loopbacks is not None else (have.loopbacks if have else ())
    return after


# -- host -------------------------------------------------------------------------------------
def gather(runner):
    _rc, out, _err = runner.read([VBOXMANAGE, "natnetwork", "list"])
    networks = parse_natnetworks(out)
    if networks and not all(is_complete(n) for n in networks.values()):
        _rc, out, _err = runner.read([VBOXMANAGE, "list", "natnets"])
        networks = parse_natnetworks(out)
    return networks


def converge(module, want, gather_networks, plan_commands, predict_network):
    """gather -> plan -> run the VBoxManage commands -> read back, under the host lock; the result.
    Shared by the VirtualBox network modules, which differ only in these three functions."""
    runner = Runner(module)
    state = module.params["state"]
    with host_lock():
        have = gather_networks(runner).get(want.name)
        commands = plan_commands(want, have, state)
        ran = [runner.change(argv, shown=shlex.join(argv)).ran for argv in commands]
        if any(ran):  # read back what VBoxManage made of it; in check mode, the prediction
            after = gather_networks(runner).get(want.name)
        else:
            after = predict_network(want, have, state) if commands else have
    before_dict = have.to_dict() if have else {}
    after_dict = after.to_dict() if after else {}
    return build_result(module, bool(commands), runner.commands, before_dict, after=after_dict,
                        diff={"before": before_dict, "after": after_dict})


def run(module):
    """The virtualbox_natnetwork module: gather, plan, apply under the host lock, report."""
    return converge(module, want_from_params(module.params), gather, plan, predict)
