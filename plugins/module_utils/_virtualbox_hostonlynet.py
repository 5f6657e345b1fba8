# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VirtualBox 7 host-only networks (``VBoxManage hostonlynet``): model, parser, planner, apply.

VirtualBox 7 replaced host-only interfaces (vboxnetN) by host-only networks on hosts where it
uses the system's vmnet framework (macOS); there ``VBoxManage hostonlynet add / modify / remove``
manage them and ``VBoxManage list hostonlynets`` prints them, one block per network:

    Name:            HostNetwork
    GUID:            0f6e5d4c-...

    State:           Enabled
    NetworkMask:     255.255.255.0
    LowerIP:         192.168.60.2
    UpperIP:         192.168.60.254
    VBoxNetworkName: hostonly-HostNetwork

(a blank line after GUID and after each block). The layout was written from VirtualBox's
documentation and source, not captured from a running VirtualBox. Everything but ``gather`` and
``apply`` is pure.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    CommandError,
    HypervisorNetworkError,
    ValidationError,
)
from ansible_collections.hypervisor.network.plugins.module_utils._virtualbox import VBOXMANAGE, converge

NAME_MAX = 128

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    netmask=dict(type="str", default="255.255.255.0"),
    lower_ip=dict(type="str"),
    upper_ip=dict(type="str"),
    enabled=dict(type="bool", default=True),
)


@dataclass(frozen=True)
class HostOnlyNet:
    name: str
    netmask: str = None
    lower_ip: str = None
    upper_ip: str = None
    enabled: bool = None
    id: str = None  # noqa: A003 - VirtualBox's GUID, as printed; only read

    def to_dict(self):
        return {"name": self.name, "id": self.id, "enabled": self.enabled, "netmask": self.netmask,
                "lower_ip": self.lower_ip, "upper_ip": self.upper_ip}


# -- want -------------------------------------------------------------------------------------
def _ipv4(field_name, value):
    if not isinstance(value, str) or not value:
        raise ValidationError(field_name, value, "an IPv4 address is required with state=present")
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ValidationError(field_name, value, "not an IPv4 address")


def _netmask(value):
    try:
        net = ipaddress.IPv4Network("0.0.0.0/%s" % value)
    except (ValueError, TypeError):
        raise ValidationError("netmask", value, "a contiguous IPv4 netmask such as 255.255.255.0")
    if not isinstance(value, str) or "." not in value or net.prefixlen == 0 or net.prefixlen > 30:
        raise ValidationError("netmask", value, "a contiguous IPv4 netmask between 128.0.0.0 and 255.255.255.252, dotted")
    return net.prefixlen


def want_from_params(params):
    """Validate the task's options before anything is run; returns the wanted network."""
    name = params.get("name")
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValidationError("name", name, "a name without leading or trailing spaces is required")
    if not name.isprintable() or len(name) > NAME_MAX:
        raise ValidationError("name", name, "printable characters only, at most %d" % NAME_MAX)
    if params["state"] == "absent":
        return HostOnlyNet(name=name)
    prefix = _netmask(params.get("netmask"))
    lower = _ipv4("lower_ip", params.get("lower_ip"))
    upper = _ipv4("upper_ip", params.get("upper_ip"))
    net = ipaddress.IPv4Network("%s/%d" % (lower, prefix), strict=False)
    if upper not in net:
        raise ValidationError("upper_ip", str(upper), "not in %s, the network of lower_ip and netmask" % net)
    if upper < lower:
        raise ValidationError("upper_ip", str(upper), "below lower_ip %s" % lower)
    for field_name, address in (("lower_ip", lower), ("upper_ip", upper)):
        if address in (net.network_address, net.broadcast_address):
            raise ValidationError(field_name, str(address), "the network or broadcast address of %s" % net)
    return HostOnlyNet(name=name, netmask=str(net.netmask), lower_ip=str(lower), upper_ip=str(upper),
                       enabled=params["enabled"])


# -- parse ------------------------------------------------------------------------------------
_KEYS = {"Name": "name", "GUID": "id", "State": "enabled", "NetworkMask": "netmask",
         "LowerIP": "lower_ip", "UpperIP": "upper_ip"}


def parse_hostonlynets(text):
    """``list hostonlynets`` -> {name: HostOnlyNet}. A block starts at ``Name:``; blank lines and
    keys this module does not model (VBoxNetworkName) are skipped."""
    networks, current = {}, None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep or key.strip() not in _KEYS:
            continue
        field_name, value = _KEYS[key.strip()], value.strip()
        if field_name == "name":
            current = {"name": value}
            networks[value] = current
            continue
        if current is None:
            raise HypervisorNetworkError("VBoxManage list hostonlynets printed %r before any Name:" % line)
        if field_name == "enabled":
            if value not in ("Enabled", "Disabled"):
                raise HypervisorNetworkError("VBoxManage list hostonlynets printed a State this module cannot read: %r" % value)
            value = value == "Enabled"
        current[field_name] = value
    return dict((name, HostOnlyNet(**fields)) for name, fields in networks.items())


# -- plan -------------------------------------------------------------------------------------
def _opt(flag, value):
    return "--%s=%s" % (flag, value)


def plan(want, have, state):
    """The VBoxManage argv lists that turn ``have`` (None: missing) into ``want``."""
    if state == "absent":
        return [[VBOXMANAGE, "hostonlynet", "remove", _opt("name", want.name)]] if have else []
    if have is None:
        return [[VBOXMANAGE, "hostonlynet", "add", _opt("name", want.name), _opt("netmask", want.netmask),
                 _opt("lower-ip", want.lower_ip), _opt("upper-ip", want.upper_ip),
                 "--enable" if want.enabled else "--disable"]]
    options = []
    for flag, key in (("netmask", "netmask"), ("lower-ip", "lower_ip"), ("upper-ip", "upper_ip")):
        if getattr(want, key) != getattr(have, key):
            options.append(_opt(flag, getattr(want, key)))
    if want.enabled != have.enabled:
        options.append("--enable" if want.enabled else "--disable")
    return [[VBOXMANAGE, "hostonlynet", "modify", _opt("name", want.name)] + options] if options else []


def predict(want, have, state):
    if state == "absent":
        return None
    return HostOnlyNet(name=want.name, netmask=want.netmask, lower_ip=want.lower_ip, upper_ip=want.upper_ip,
                       enabled=want.enabled, id=have.id if have else None)


# -- host -------------------------------------------------------------------------------------
def gather(runner):
    try:
        _rc, out, _err = runner.read([VBOXMANAGE, "list", "hostonlynets"])
    except CommandError as exc:
        raise HypervisorNetworkError(
            "this VirtualBox cannot list host-only networks (VBoxManage list hostonlynets failed: %s). Host-only "
            "networks (hostonlynet) exist in VirtualBox 7 on hosts where it uses the vmnet framework (macOS); "
            "elsewhere VirtualBox has host-only interfaces (vboxnetN: the virtualbox_host role's "
            "virtualbox_host_hostonly_interfaces)" % (exc.details.get("stderr") or exc.msg).strip(),
            **exc.details
        )
    return parse_hostonlynets(out)


def run(module):
    """want -> have -> plan -> apply under the host lock (the shared VirtualBox converge); the result."""
    return converge(module, want_from_params(module.params), gather, plan, predict)
