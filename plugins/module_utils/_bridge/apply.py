# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of the bridge module: gather the host, apply the plan (check the uplink and roll
back), write and remove the persisted files, and say what the state is after."""

from __future__ import annotations

import json
import os

from ansible_collections.hypervisor.network.plugins.module_utils._bridge import persist
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.model import (
    describe_table,
    parse_host,
)
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.plan import (
    KERNEL_DEFAULTS,
    SELF_MAINTAINED_PROTOCOLS,
    MoveUplink,
)
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.uplink import answers
from ansible_collections.hypervisor.network.plugins.module_utils._errors import CommandError, HypervisorNetworkError

_MANAGER_PROCESSES = {"NetworkManager": "networkmanager", "systemd-network": "networkd"}


def gather(runner):
    routes = [dict(route, family=4) for route in runner.read_json(["ip", "-j", "route"]) or []]
    # A kernel without IPv6 answers "address family not supported": no IPv6 routes then.
    rc, out, _err = runner.read(["ip", "-j", "-6", "route"], check_rc=False)
    if rc == 0 and out.strip():
        routes += [dict(route, family=6) for route in json.loads(out)]
    return parse_host(
        runner.read_json(["ip", "-j", "-d", "link", "show"]),
        runner.read_json(["ip", "-j", "addr"]),
        runner.read_json(["bridge", "-j", "vlan", "show"]),
        routes,
    )


def active_managers(proc="/proc"):
    """Network managers running on this host, found by process name; ifupdown by its state file."""
    found = set()
    for pid in os.listdir(proc):
        if pid.isdigit():
            try:
                with open(os.path.join(proc, pid, "comm")) as handle:
                    name = handle.read().strip()
            except OSError:
                continue
            if name in _MANAGER_PROCESSES:
                found.add(_MANAGER_PROCESSES[name])
    if os.path.exists("/run/network/ifstate"):
        found.add("ifupdown")
    return found


def our_files(directory):
    """{path: text} of the files in ``directory`` (and networkd drop-in dirs) with our header."""
    files = {}
    if not os.path.isdir(directory):
        return files
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        paths = [os.path.join(path, e) for e in sorted(os.listdir(path))] if os.path.isdir(path) and entry.endswith(".d") else [path]
        for candidate in paths:
            if os.path.isfile(candidate):
                with open(candidate, encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
                if text.startswith(persist.HEADER):
                    files[candidate] = text
    return files


def claims(existing, bridge):
    """port -> bridge, for the ports that other bridges' persisted files own."""
    owners = {}
    for text in existing.values():
        owner, ports = persist.read_header(text)
        if owner != bridge:
            for port in ports:
                owners[port] = owner
    return owners


def own_ports(existing, bridge):
    """The ports that ``bridge``'s own persisted files list: what a boot enslaves to it."""
    ports = set()
    for text in existing.values():
        owner, listed = persist.read_header(text)
        if owner == bridge:
            ports.update(listed)
    return frozenset(ports)


def persist_config(want, host, the_plan):
    """What goes to disk: the wanted settings, with the runtime values where the user left a
    setting out (a manager's default, NetworkManager's STP on for one, would differ)."""
    bridge = host.links.get(want.name)
    current = bridge.bridge if bridge is not None else KERNEL_DEFAULTS
    config = persist.BridgeConfig(name=want.name, mtu=want.mtu, mac=want.mac, default_pvid=want.default_pvid, vlans=want.vlans)
    if current.get("default_pvid") is not None:
        config.runtime_default_pvid = current.get("default_pvid")
    # VLAN filtering is off by default everywhere: written only when asked for or already on.
    config.vlan_filtering = want.vlan_filtering if want.vlan_filtering is not None else (current.get("vlan_filtering") or None)
    for key in ("stp", "forward_delay"):
        value = getattr(want, key)
        setattr(config, key, value if value is not None else current.get(key))
    # written only when asked for: every manager's default is the kernel's, and the runtime value
    # cannot always be read (see model._ageing_time)
    config.ageing_time = want.ageing_time
    moved_addresses = [a for move in the_plan.moves for a in move.addresses]
    moved_routes = [r for move in the_plan.moves for r in move.routes]
    if want.addresses is not None:
        config.addresses = list(want.addresses)
    else:
        config.addresses = sorted(set((bridge.addresses if bridge else []) + moved_addresses))
    on_bridge = [r for r in host.routes if r.get("dev") == want.name and r.get("protocol") not in SELF_MAINTAINED_PROTOCOLS]
    for route in on_bridge + moved_routes:
        entry = (route.get("dst", "default"), route.get("gateway"), route.get("metric"))
        if entry not in config.routes:
            config.routes.append(entry)
    config.ports = [persist.PortConfig(p.name, p.vlan_parent, p.vlan_id, p.vlans) for p in want.ports or []]
    return config


def predicted_after(want, before, the_plan):
    """``after`` in check mode: the state the plan would produce."""
    if want.state == "absent":
        return {"name": want.name, "present": False}
    after = dict(before, present=True)
    for key in ("stp", "forward_delay", "ageing_time", "mtu", "mac", "vlan_filtering", "default_pvid"):
        if getattr(want, key) is not None:
            after[key] = getattr(want, key)
    moved = [a for move in the_plan.moves for a in move.addresses]
    after["addresses"] = want.addresses if want.addresses is not None else sorted(set(before.get("addresses", []) + moved))
    ports = dict((p["name"], p) for p in before.get("ports", []))
    for name in the_plan.released():
        ports.pop(name, None)
    for port in want.ports or []:
        entry = dict(ports.get(port.name, {"name": port.name}))
        if port.vlans is not None:
            entry.update(describe_table(port.vlans))
        ports[port.name] = entry
    after["ports"] = [ports[name] for name in sorted(ports)]
    if want.vlans is not None:
        after["bridge_vlans"] = describe_table(want.vlans)
    return after


def apply_plan(runner, the_plan, params):
    """Run the plan; after an uplink move, check the target answers, else roll back and fail."""
    moved = really_moved = False
    for done, step in enumerate(the_plan.steps):
        moved = moved or isinstance(step, MoveUplink)
        try:
            ran = runner.change(step.argv, data=step.data, shown=step.shown).ran
        except CommandError:
            if moved:  # the host may be cut off: revert what ran, a half-done batch included
                _roll_back(runner, the_plan.undo(done + (1 if isinstance(step, MoveUplink) else 0)))
            raise
        really_moved = really_moved or (ran and isinstance(step, MoveUplink))
    if not really_moved:  # no move, or check mode: nobody was cut off
        return None
    target = params.get("uplink_check_target") or next((m.gateway for m in the_plan.moves if m.gateway), None)
    if not target:
        return "skipped: no uplink_check_target and no default gateway on the moved ports"
    timeout = params.get("uplink_check_timeout")
    if answers(target, timeout):
        return "%s answered after the move" % target
    errors = _roll_back(runner, the_plan.undo())
    raise HypervisorNetworkError(
        "%s did not answer within %ss after moving %s to %s; rolled back to the previous state%s"
        % (target, timeout, ", ".join(m.port for m in the_plan.moves), params["name"],
           "" if not errors else " with errors: %s" % "; ".join(errors)),
        commands=runner.commands,
    )


def _roll_back(runner, steps):
    errors = []
    for step in steps:
        try:
            runner.change(step.argv, data=step.data, shown="rollback: " + step.shown)
        except CommandError as exc:
            errors.append(exc.msg)
    return errors


def write_files(runner, persister, directory, bridge, files, existing):
    """Write ``files`` {path: text} and remove the other files of this bridge; return diff entries.
    ``existing`` is what our_files found in ``directory`` before."""
    mine = dict((path, text) for path, text in existing.items() if persist.read_header(text)[0] == bridge)
    diffs = []
    for path, text in sorted(files.items()):
        before = existing.get(path)
        if before is None and os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                before = handle.read()
        if runner.write_file(path, text, mode=0o600 if persister == "networkmanager" else 0o644):
            diffs.append({"before_header": path, "after_header": path, "before": before or "", "after": text})
    for path in sorted(set(mine) - set(files)):
        if runner.remove_file(path):
            diffs.append({"before_header": path, "after_header": "%s (removed)" % path, "before": mine[path], "after": ""})
    # networkd's one file per link goes with the last drop-in of any bridge on it.
    others = [path for path in existing if path not in mine]
    for entry in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        path = os.path.join(directory, entry)
        if not entry.startswith(persist.LINK_STEMS) or not entry.endswith(".network") or path in files or not os.path.isfile(path):
            continue
        if any(other.startswith(path + ".d" + os.sep) for other in others):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        if text.startswith("# Managed by hypervisor.network:") and runner.remove_file(path):
            diffs.append({"before_header": path, "after_header": "%s (removed)" % path, "before": text, "after": ""})
    return diffs
