# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VMware Workstation vmnet NAT (nat.conf on Linux hosts): parser, validation, planner, apply.

nat.conf is an INI-like file that people also edit by hand and that the Virtual Network Editor
rewrites, so the planner edits it line by line: it changes only the lines it manages (port
forwards in [incomingtcp] / [incomingudp], policy / nameserverN / autodetect in [dns]) and keeps
every comment, blank line and other section exactly as it was.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass

from ansible_collections.hypervisor.network.plugins.module_utils import _validate
from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    CommandError,
    HypervisorNetworkError,
    ValidationError,
)
from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

FORWARD_SECTIONS = {"tcp": "incomingtcp", "udp": "incomingudp"}
DNS_POLICIES = ("order", "rotate", "burst")
MAX_NAMESERVERS = 3
DEFAULT_RESTART = ["vmware-networks --stop", "vmware-networks --start"]

ARGUMENT_SPEC = dict(
    vmnet=dict(type="str", default="vmnet8"),
    path=dict(type="path"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    port_forwards=dict(type="list", elements="dict", default=[], options=dict(
        protocol=dict(type="str", choices=["tcp", "udp"], default="tcp"),
        host_port=dict(type="int", required=True),
        guest_ip=dict(type="str"),
        guest_port=dict(type="int"),
    )),
    purge_port_forwards=dict(type="bool", default=False),
    dns=dict(type="dict", options=dict(
        policy=dict(type="str", choices=list(DNS_POLICIES)),
        nameservers=dict(type="list", elements="str"),
        autodetect=dict(type="bool"),
    )),
    restart_command=dict(type="list", elements="str", default=list(DEFAULT_RESTART)),
)
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*\Z")
_KEY_VALUE = re.compile(r"^\s*(?P<key>[^#;=\s][^=]*?)\s*=\s*(?P<value>.*?)\s*\Z")
_TARGET = re.compile(r"^(?P<ip>[0-9.]+):(?P<port>\d+)\Z")
_VMNET = re.compile(r"^vmnet\d{1,3}\Z")


@dataclass(frozen=True, order=True)
class Forward:
    protocol: str
    host_port: int
    guest_ip: str
    guest_port: int

    def line(self):
        return "%d = %s:%d" % (self.host_port, self.guest_ip, self.guest_port)

    def to_dict(self):
        return {"protocol": self.protocol, "host_port": self.host_port, "guest_ip": self.guest_ip, "guest_port": self.guest_port}


# -- parsing --------------------------------------------------------------------------------
def entries(text):
    """Yield (index, section, key, value) for every ``key = value`` line; sections lower-cased."""
    section = None
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        match = _SECTION.match(line)
        if match:
            section = match.group("name").strip().lower()
            continue
        match = _KEY_VALUE.match(line)
        if match:
            yield index, section, match.group("key"), match.group("value")


def _dns_value(value):
    return value.rstrip(";").strip()  # the Windows template writes "policy = order;"


def parse(text):
    """The facts this module manages: forwards (with unreadable ones kept raw) and DNS keys."""
    forwards, unreadable, dns, host = [], [], {}, {}
    for _index, section, key, value in entries(text):
        if section in FORWARD_SECTIONS.values() and key.isdigit():
            protocol = "tcp" if section == "incomingtcp" else "udp"
            match = _TARGET.match(value)
            if match:
                forwards.append(Forward(protocol, int(key), match.group("ip"), int(match.group("port"))))
            else:
                unreadable.append({"protocol": protocol, "host_port": int(key), "target": value})
        elif section == "dns":
            dns[key.lower()] = _dns_value(value)
        elif section == "host" and key.lower() in ("ip", "netmask"):
            host[key.lower()] = value
    return {"port_forwards": sorted(forwards), "unreadable_port_forwards": unreadable, "dns": dns, "host": host}


def subnet(host):
    """The vmnet subnet from [host] ip and netmask, or None when the file does not say."""
    try:
        return ipaddress.ip_network("%s/%s" % (host["ip"], host["netmask"]), strict=False)
    except (KeyError, ValueError):
        return None


# -- validation -------------------------------------------------------------------------------
def validate(params, have):
    """Return (forwards, dns_keys, restart argv lists) or raise ValidationError naming the field."""
    check_vmnet(params)
    net = subnet(have["host"])
    forwards, seen = [], set()
    for index, item in enumerate(params.get("port_forwards") or []):
        where = "port_forwards[%d]" % index
        protocol = str(item.get("protocol") or "tcp").lower()
        if protocol not in FORWARD_SECTIONS:
            raise ValidationError(where + ".protocol", item.get("protocol"), "one of tcp, udp")
        host_port = _single_port(where + ".host_port", item.get("host_port"))
        if params["state"] == "absent" and item.get("guest_ip") is None:
            forwards.append(Forward(protocol, host_port, "", 0))
            continue
        guest = _validate.address(where + ".guest_ip", item.get("guest_ip"))
        if guest.version != 4:
            raise ValidationError(where + ".guest_ip", item.get("guest_ip"), "nat.conf forwards to IPv4 guests")
        if net is not None and guest not in net:
            raise ValidationError(where + ".guest_ip", item.get("guest_ip"), "not inside this vmnet's subnet %s" % net)
        if (protocol, host_port) in seen:
            raise ValidationError(where + ".host_port", host_port, "%s port %d is forwarded twice" % (protocol, host_port))
        seen.add((protocol, host_port))
        forwards.append(Forward(protocol, host_port, str(guest), _single_port(where + ".guest_port", item.get("guest_port"))))
    dns = _dns_keys(params.get("dns"), params["state"])
    restart = []
    for index, command in enumerate(params.get("restart_command") or []):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ValidationError("restart_command[%d]" % index, command, "not a command line (%s)" % exc)
        if not argv:
            raise ValidationError("restart_command[%d]" % index, command, "an empty command")
        restart.append(argv)
    return forwards, dns, restart


def _single_port(field, value):
    low, high = _validate.port_range(field, value)
    if low != high:
        raise ValidationError(field, value, "nat.conf forwards single ports, not ranges")
    return low


def _dns_keys(dns, state):
    """The [dns] keys to set, in file order: policy, autodetect, nameserver1..3 (None = remove)."""
    if not dns:
        return {}
    if state == "absent":
        raise ValidationError("dns", dns, "DNS settings are only set with state=present")
    keys = {}
    policy = dns.get("policy")
    if policy is not None:
        if policy not in DNS_POLICIES:
            raise ValidationError("dns.policy", policy, "one of %s" % ", ".join(DNS_POLICIES))
        keys["policy"] = policy
    nameservers = dns.get("nameservers")
    autodetect = dns.get("autodetect")
    if nameservers is not None:
        if len(nameservers) > MAX_NAMESERVERS:
            raise ValidationError("dns.nameservers", nameservers, "VMware NAT takes at most %d" % MAX_NAMESERVERS)
        for index, server in enumerate(nameservers):
            if _validate.address("dns.nameservers[%d]" % index, server).version != 4:
                raise ValidationError("dns.nameservers[%d]" % index, server, "an IPv4 address")
        # Listed servers are only used when autodetection is off, so listing them implies it.
        if autodetect is None and nameservers:
            autodetect = False
    if autodetect is not None:
        keys["autodetect"] = "1" if autodetect else "0"
    if nameservers is not None:
        for number in range(1, MAX_NAMESERVERS + 1):
            keys["nameserver%d" % number] = str(ipaddress.ip_address(nameservers[number - 1])) if number <= len(nameservers) else None
    return keys


# -- planning ---------------------------------------------------------------------------------
def plan(text, forwards, dns_keys, state, purge):
    """Return the new nat.conf content; equal to ``text`` when nothing is to change."""
    lines = text.splitlines()
    replace, drop = {}, set()
    wanted = {(f.protocol, f.host_port): f for f in forwards}
    placed = set()
    for index, section, key, value in entries(text):
        if section in FORWARD_SECTIONS.values() and key.isdigit():
            ident = ("tcp" if section == "incomingtcp" else "udp", int(key))
            if state == "absent":
                if ident in wanted:
                    drop.add(index)
            elif ident in wanted and ident not in placed:
                placed.add(ident)
                if value != "%s:%d" % (wanted[ident].guest_ip, wanted[ident].guest_port):
                    replace[index] = wanted[ident].line()
            elif ident in wanted or purge:
                drop.add(index)  # a second line for one port, or a forward we do not want
        elif section == "dns" and key.lower() in dns_keys:
            new = dns_keys[key.lower()]
            if new is None or key.lower() in placed:
                drop.add(index)
            elif _dns_value(value) != new:
                replace[index] = "%s = %s" % (key, new)
            placed.add(key.lower())
    additions = {}
    if state == "present":
        for forward in sorted(forwards):
            if (forward.protocol, forward.host_port) not in placed:
                additions.setdefault(FORWARD_SECTIONS[forward.protocol], []).append(forward.line())
        for key, new in dns_keys.items():
            if new is not None and key not in placed:
                additions.setdefault("dns", []).append("%s = %s" % (key, new))
    if not (replace or drop or additions):
        return text
    out = [replace.get(i, line) for i, line in enumerate(lines) if i not in drop]
    for section, new_lines in additions.items():
        out = _append_to_section(out, section, new_lines)
    return "\n".join(out) + "\n" if out else ""


def _append_to_section(lines, section, new_lines):
    """Insert after the last non-blank line of ``section``, or add the section at the end."""
    start = None
    for index, line in enumerate(lines):
        match = _SECTION.match(line)
        if match and match.group("name").strip().lower() == section:
            start = index
        elif match and start is not None:
            break
    if start is None:
        tail = [""] if lines and lines[-1].strip() else []
        return lines + tail + ["[%s]" % section] + new_lines
    end = start + 1
    for index in range(start + 1, len(lines)):
        if _SECTION.match(lines[index]):
            break
        if lines[index].strip():
            end = index + 1
    return lines[:end] + new_lines + lines[end:]


# -- host -------------------------------------------------------------------------------------
def check_vmnet(params):
    """The vmnet name becomes part of a path under /etc/vmware, so it must be only a vmnet name."""
    vmnet = params.get("vmnet")
    if vmnet is not None and not _VMNET.match(str(vmnet)):
        raise ValidationError("vmnet", vmnet, "a VMware virtual network name such as vmnet8")


def config_path(params):
    check_vmnet(params)
    if params.get("path"):
        return params["path"]
    return "/etc/vmware/%s/nat/nat.conf" % params["vmnet"]


def facts(path, text):
    parsed = parse(text)
    return {"path": path, "port_forwards": [f.to_dict() for f in parsed["port_forwards"]],
            "unreadable_port_forwards": parsed["unreadable_port_forwards"], "dns": parsed["dns"]}


def _restart(runner, restart, path):
    """A failed restart leaves the new file in place, and the next run sees nothing to change,
    so say plainly that the NAT service may still run the old settings."""
    for argv in restart:
        try:
            runner.change(argv, shown=shlex.join(argv))
        except CommandError as exc:
            exc.msg = "%s was written, but restarting the NAT service failed, so it may still use the old " \
                      "settings; fix the cause and restart it by hand: %s" % (path, exc.msg)
            raise


def run(module):
    """The vmware_nat module: read nat.conf, edit it line by line under the host lock, restart."""
    runner = Runner(module)
    params = module.params
    path = config_path(params)
    with host_lock():
        try:
            with open(path, "r", encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise HypervisorNetworkError(
                "%s does not exist: is VMware Workstation installed and is %s a NAT vmnet? "
                "(set path to the nat.conf to manage)" % (path, params.get("vmnet") or "the vmnet"))
        forwards, dns_keys, restart = validate(params, parse(text))
        content = plan(text, forwards, dns_keys, params["state"], params["purge_port_forwards"])
        changed = content != text
        if changed:
            runner.write_file(path, content)
            _restart(runner, restart, path)
    return build_result(module, changed, runner.commands, facts(path, text), after=lambda: facts(path, content),
                        diff={"before": text, "after": content, "before_header": path, "after_header": path}, path=path)
