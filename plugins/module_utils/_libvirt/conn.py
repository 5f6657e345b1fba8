# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt-python behind one small interface: connect, gather a network's state, apply steps.

Every libvirt error becomes a HypervisorNetworkError that names the URI; a daemon that does not
answer gets a message that says how to start it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_plan import HostState, host_state

try:
    import libvirt
except ImportError:  # reported by connect(), so that argument errors still come first
    libvirt = None

SECTIONS = {"ip-dhcp-host": 4, "ip-dhcp-range": 5, "dns-host": 10, "dns-txt": 11, "dns-srv": 12}
UPDATE_COMMANDS = {"delete": 2, "add-last": 3}
AFFECT_LIVE, AFFECT_CONFIG = 1, 2
NETWORK_XML_INACTIVE = 1
ERR_NO_NETWORK = 43
BR_STATE_FORWARDING = 3

HOW_TO_START = (
    "is libvirtd running? Start it with 'systemctl start libvirtd' (or the socket units "
    "virtqemud.socket/virtnetworkd.socket), or without systemd 'virtlogd -d && libvirtd -d'; "
    "check the uri option and that this user may open it"
)


def _quiet(_ctx, _err):
    """libvirt prints every error to stderr by default; they are raised as exceptions instead."""


def connect(uri):
    if libvirt is None:
        raise HypervisorNetworkError(
            "the Python module 'libvirt' is missing on the target host; install libvirt-python "
            "(Debian/Ubuntu: python3-libvirt, Fedora/EL: python3-libvirt)"
        )
    libvirt.registerErrorHandler(_quiet, None)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise HypervisorNetworkError("cannot connect to libvirt at %s: %s; %s" % (uri, exc.get_error_message(), HOW_TO_START), uri=uri)


@contextlib.contextmanager
def libvirt_errors(uri, what):
    """Turn a libvirtError raised inside the block into a HypervisorNetworkError."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise HypervisorNetworkError("libvirt at %s: %s failed: %s" % (uri, what, exc.get_error_message()), uri=uri)


def lookup_network(conn, uri, name):
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == ERR_NO_NETWORK:
            return None
        raise HypervisorNetworkError("libvirt at %s: looking up network %s failed: %s" % (uri, name, exc.get_error_message()), uri=uri)


def bridge_ports(runner, bridge):
    """Interfaces enslaved to ``bridge`` now (taps of running guests included)."""
    if not bridge:
        return ()
    rc, out, _err = runner.read(["ip", "-o", "link", "show", "master", bridge], check_rc=False)
    if rc != 0:
        return ()
    return tuple(sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line))


def wait_until_forwarding(ports, timeout=30.0):
    """With STP on, a new bridge port passes listening and learning (two forward delays, at least
    2 s each) before it forwards; the guests count as connected again only after that."""
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending and time.monotonic() < deadline:
        pending = [port for port in pending if _bridge_port_state(port) not in (None, BR_STATE_FORWARDING)]
        if pending:
            time.sleep(0.2)
    return pending


def _bridge_port_state(port):
    try:
        with open("/sys/class/net/%s/brport/state" % port) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None  # gone, or no longer a bridge port: nothing to wait for


def gather(conn, uri, name, runner):
    net = lookup_network(conn, uri, name)
    if net is None:
        return HostState()
    with libvirt_errors(uri, "reading network %s" % name):
        active = bool(net.isActive())
        persistent = bool(net.isPersistent())
        config_xml = net.XMLDesc(NETWORK_XML_INACTIVE) if persistent else None
        live_xml = net.XMLDesc(0) if active else None
        autostart = bool(net.autostart()) if persistent else False
    have = host_state(config_xml, live_xml, active=active, autostart=autostart)
    return dataclasses.replace(have, ports=bridge_ports(runner, (have.live or have.config).bridge) if active else ())


def _apply_libvirt(conn, uri, step):
    with libvirt_errors(uri, step.action + " of network " + step.name):
        if step.action == "define":
            conn.networkDefineXML(step.xml)
            return
        net = conn.networkLookupByName(step.name)
        if step.action == "update":
            flags = (AFFECT_LIVE if step.live else 0) | (AFFECT_CONFIG if step.config else 0)
            net.update(UPDATE_COMMANDS[step.command], SECTIONS[step.section], step.parent_index, step.xml, flags)
        elif step.action == "start":
            net.create()
        elif step.action == "destroy":
            net.destroy()
        elif step.action == "undefine":
            net.undefine()
        elif step.action == "autostart":
            net.setAutostart(1 if step.autostart else 0)
        else:
            raise HypervisorNetworkError("unknown plan step %r (a bug in hypervisor.network)" % step.action)
    return True


def apply_steps(conn, uri, steps, runner):
    """Apply the plan in order; return the ports re-attached (or, in check mode, to re-attach).

    Every libvirt call goes through ``runner.call`` and every ``ip link`` through
    ``runner.change``: the Runner records each and runs it unless in check mode."""
    reattached = []
    applied = False  # a libvirt call really ran (not in check mode): the bridge may be new
    for step in steps:
        if step.action == "reattach":
            reattached += _reattach(runner, step, applied)
        else:
            applied = bool(runner.call(step.shown(), _apply_libvirt, conn, uri, step)) or applied
    return reattached


def _reattach(runner, step, restarted):
    """Put the ports that were on the bridge before the restart back on it. After a restart that
    really ran, a port already back (libvirt re-attached it) or gone (its guest shut down
    meanwhile, taking the tap with it) is left alone; otherwise (check mode) every port of the
    plan is shown."""
    attached = bridge_ports(runner, step.bridge) if restarted else ()
    done = []
    for port in step.ports:
        gone = restarted and runner.read(["ip", "link", "show", port], check_rc=False)[0] != 0
        if port not in attached and not gone:
            runner.change(["ip", "link", "set", port, "master", step.bridge])
            done.append(port)
    if restarted:
        wait_until_forwarding(step.ports)
    return done
