# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistent bridge configuration: which network manager to write for, and pure renderers for
systemd-networkd, NetworkManager keyfiles and ifupdown. Every file starts with a header naming the
bridge and its ports, so a later run finds its own files and sees which ports another bridge
claims."""

from __future__ import annotations

import os
import re
import shlex
import uuid
from dataclasses import dataclass, field

from ansible_collections.hypervisor.network.plugins.module_utils._bridge.model import vlan_ranges
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

PERSISTERS = ("networkd", "networkmanager", "ifupdown")
HEADER = "# Managed by hypervisor.network: bridge="
PORTS_HEADER = "# hypervisor.network ports:"
# networkd applies only the first .network file that matches a link, so every link we configure
# has exactly one: 10-hnet-link-NAME.network, holding only [Match]; what each bridge needs of the
# link (Bridge=, VLAN=, [BridgeVLAN]) goes into a drop-in of its own beside it. The main file is
# shared by every bridge that uses the link and removed with the last drop-in.
LINK_HEADER = "# Managed by hypervisor.network: link="
LINK_STEMS = ("10-hnet-link-", "10-hnet-vlanparent-")  # the second: files of earlier releases
# Names that are safe in every file format and shell line without quoting surprises.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+\Z")


@dataclass
class PortConfig:
    name: str
    vlan_parent: str = None
    vlan_id: int = None
    vlans: dict = None


@dataclass
class BridgeConfig:
    """What is written to disk: the wanted bridge plus the addresses and routes it ends up with."""

    name: str
    stp: bool = None
    forward_delay: int = None
    ageing_time: int = None  # seconds
    mtu: int = None
    mac: str = None
    vlan_filtering: bool = None
    default_pvid: int = None
    # the bridge's default PVID at runtime when default_pvid is not given (the kernel's is 1):
    # the VLAN a port gets on joining, which the boot configuration must reproduce exactly
    runtime_default_pvid: int = 1
    vlans: dict = None
    addresses: list = field(default_factory=list)
    routes: list = field(default_factory=list)  # (dst, gateway, metric or None)
    ports: list = field(default_factory=list)

    def header(self):
        return "%s%s\n%s %s\n" % (HEADER, self.name, PORTS_HEADER, " ".join(p.name for p in self.ports))


def choose_persister(requested, active):
    """``requested`` is the persist option; ``active`` the managers found running, in order of
    preference. Returns (persister, reason)."""
    if requested != "auto":
        return requested, "persist: %s was requested" % requested
    for persister in ("networkmanager", "networkd", "ifupdown"):
        if persister in active:
            return persister, "persist: auto found %s active on the host" % persister
    return "none", "persist: auto found no active network manager; the bridge is runtime only"


def check_names(config, persister):
    names = [config.name] + [p.name for p in config.ports] + [p.vlan_parent for p in config.ports if p.vlan_parent]
    for name in names:
        if not _SAFE_NAME.match(name):
            field_name = "name" if name == config.name else "ports"
            raise ValidationError(field_name, name, "only letters, digits, '.', '_' and '-' can be written to %s configuration" % persister)


def read_header(text):
    """(bridge, ports) from a file's first lines, or (None, []) for a file that is not ours."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith(HEADER):
        return None, []
    ports = lines[1][len(PORTS_HEADER):].split() if len(lines) > 1 and lines[1].startswith(PORTS_HEADER) else []
    return lines[0][len(HEADER):].strip(), ports


def file_stem(name):
    return "hnet-%s" % name


def render(persister, config, directory):
    """{path: content} for one persister (the network manager the files are written for)."""
    renderer = {"networkd": render_networkd, "networkmanager": render_networkmanager, "ifupdown": render_ifupdown}[persister]
    return dict((os.path.join(directory, name), text) for name, text in renderer(config).items())


def _yes(value):
    return "yes" if value else "no"


def _networkd_vlan_section(table):
    if not table:
        return ""
    lines = ["", "[BridgeVLAN]"]
    lines += ["VLAN=%s" % text for text in vlan_ranges(vid for vid, (pvid, _u) in table.items() if not pvid)]
    lines += ["PVID=%d" % vid for vid, (pvid, _u) in sorted(table.items()) if pvid]
    lines += ["EgressUntagged=%s" % text for text in vlan_ranges(vid for vid, (_p, untagged) in table.items() if untagged)]
    return "\n".join(lines) + "\n"


def networkd_link_file(name):
    return "10-hnet-link-%s.network" % name


def _boot_vlan_tables(config):
    """(bridge's own table, {port: table}) as a network manager must write them, and the default
    PVID it must set (networkd's DefaultPVID, NetworkManager's vlan-default-pvid).

    networkd (before systemd 256), and NetworkManager likewise, only add the VLANs a [BridgeVLAN] section lists; it never
    removes the default PVID the kernel gives a port on joining. So the bridge is created with
    DefaultPVID=none and every table is written out in full, the kernel default included where
    the runtime path keeps it (a table the user does not manage): the VLAN table after a boot is
    then the one the module left, exactly. An explicit non-zero default_pvid is written as it is."""
    if not config.vlan_filtering:
        return None, dict((p.name, p.vlans) for p in config.ports), config.default_pvid
    if config.default_pvid:
        return config.vlans, dict((p.name, p.vlans) for p in config.ports), config.default_pvid
    default = config.runtime_default_pvid if config.default_pvid is None else 0
    joined = {default: (True, True)} if default else {}
    own = config.vlans if config.vlans is not None else joined
    ports = dict((p.name, p.vlans if p.vlans is not None else joined) for p in config.ports)
    return own, ports, 0


def render_networkd(config):
    files = {}
    own_table, port_tables, default_pvid = _boot_vlan_tables(config)
    netdev = [config.header(), "[NetDev]", "Name=%s" % config.name, "Kind=bridge"]
    netdev += ["MACAddress=%s" % config.mac] if config.mac else []
    netdev += ["MTUBytes=%d" % config.mtu] if config.mtu else []
    bridge = ["STP=%s" % _yes(config.stp)] if config.stp is not None else []
    bridge += ["ForwardDelaySec=%d" % config.forward_delay] if config.forward_delay is not None else []
    bridge += ["AgeingTimeSec=%d" % config.ageing_time] if config.ageing_time is not None else []
    bridge += ["VLANFiltering=%s" % _yes(config.vlan_filtering)] if config.vlan_filtering is not None else []
    if default_pvid is not None:
        bridge.append("DefaultPVID=%s" % (default_pvid or "none"))
    netdev += ["", "[Bridge]"] + bridge if bridge else []
    files["10-%s.netdev" % file_stem(config.name)] = "\n".join(netdev) + "\n"
    network = [config.header(), "[Match]", "Name=%s" % config.name, "", "[Network]", "ConfigureWithoutCarrier=yes"]
    network += ["Address=%s" % cidr for cidr in config.addresses]
    network += ["LinkLocalAddressing=no"] if not config.addresses else []
    for dst, gateway, metric in config.routes:
        network += ["", "[Route]"] + (["Destination=%s" % dst] if dst != "default" else [])
        network += ["Gateway=%s" % gateway] if gateway else []
        network += ["Metric=%s" % metric] if metric else []
    files["10-%s.network" % file_stem(config.name)] = "\n".join(network) + "\n" + _networkd_vlan_section(own_table)
    for port in config.ports:
        link = networkd_link_file(port.name)
        files[link] = "%s%s\n\n[Match]\nName=%s\n" % (LINK_HEADER, port.name, port.name)
        text = [config.header(), "[Network]", "Bridge=%s" % config.name]
        text += ["", "[Link]", "MTUBytes=%d" % config.mtu] if config.mtu else []
        files["%s.d/%s.conf" % (link, file_stem(config.name))] = "\n".join(text) + "\n" + _networkd_vlan_section(port_tables[port.name])
        if port.vlan_parent:
            files["10-%s-port-%s.netdev" % (file_stem(config.name), port.name)] = (
                "%s\n[NetDev]\nName=%s\nKind=vlan\n\n[VLAN]\nId=%d\n" % (config.header(), port.name, port.vlan_id))
            # networkd creates a VLAN through its parent's .network: a drop-in per VLAN on the
            # parent's one file, so the parent can be a port of another bridge as well.
            parent = networkd_link_file(port.vlan_parent)
            files[parent] = "%s%s\n\n[Match]\nName=%s\n" % (LINK_HEADER, port.vlan_parent, port.vlan_parent)
            files["%s.d/%s-vlan-%s.conf" % (parent, file_stem(config.name), port.name)] = (
                "%s\n[Network]\nVLAN=%s\nLinkLocalAddressing=no\n" % (config.header(), port.name))
    return files


def _table_items(table):
    """[(vids, flags)]: runs of plain tagged VLANs as ranges, flagged VLANs one by one, in order."""
    plain = set(vid for vid, flags in table.items() if flags == (False, False))
    items = [(text, []) for text in vlan_ranges(plain)]
    for vid in sorted(set(table) - plain):
        pvid, untagged = table[vid]
        items.append((str(vid), (["pvid"] if pvid else []) + (["untagged"] if untagged else [])))
    return sorted(items, key=lambda item: int(item[0].partition("-")[0]))


def _nm_vlans(table):
    return ",".join(" ".join([vids] + flags) for vids, flags in _table_items(table or {}))


def _nm_uuid(kind, name):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "hypervisor.network/%s/%s" % (kind, name)))


def _nm_ip(config):
    lines = []
    for family, section in ((4, "ipv4"), (6, "ipv6")):
        cidrs = [c for c in config.addresses if (":" in c) == (family == 6)]
        lines += ["", "[%s]" % section, "method=%s" % ("manual" if cidrs else "disabled")]
        lines += ["address%d=%s" % (i + 1, c) for i, c in enumerate(cidrs)]
        for index, (dst, gateway, metric) in enumerate(r for r in config.routes if (":" in (r[1] or r[0])) == (family == 6)):
            if dst == "default":
                lines.append("gateway=%s" % gateway)
            else:
                lines.append("route%d=%s%s%s" % (index + 1, dst, "," + gateway if gateway else "", "," + str(metric) if metric and gateway else ""))
    return lines


def render_networkmanager(config):
    files = {}
    text = [config.header(), "[connection]", "id=%s" % file_stem(config.name), "uuid=%s" % _nm_uuid("bridge", config.name),
            "type=bridge", "interface-name=%s" % config.name, "autoconnect=true"]
    ethernet = ["mtu=%d" % config.mtu] if config.mtu else []
    ethernet += ["cloned-mac-address=%s" % config.mac] if config.mac else []
    text += ["", "[ethernet]"] + ethernet if ethernet else []
    text += ["", "[bridge]"]
    text += ["stp=%s" % ("true" if config.stp else "false")] if config.stp is not None else []
    # NetworkManager takes 2-30 s only; below that (STP off) its default does no harm.
    text += ["forward-delay=%d" % config.forward_delay] if config.forward_delay is not None and config.forward_delay >= 2 else []
    text += ["ageing-time=%d" % config.ageing_time] if config.ageing_time is not None else []
    text += ["vlan-filtering=%s" % ("true" if config.vlan_filtering else "false")] if config.vlan_filtering is not None else []
    own_table, port_tables, default_pvid = _boot_vlan_tables(config)
    text += ["vlan-default-pvid=%d" % default_pvid] if default_pvid is not None else []
    text += ["vlans=%s" % _nm_vlans(own_table)] if own_table else []
    files["%s.nmconnection" % file_stem(config.name)] = "\n".join(text + _nm_ip(config)) + "\n"
    for port in config.ports:
        text = [config.header(), "[connection]", "id=%s-port-%s" % (file_stem(config.name), port.name),
                "uuid=%s" % _nm_uuid("port", port.name), "type=%s" % ("vlan" if port.vlan_parent else "ethernet"),
                "interface-name=%s" % port.name, "master=%s" % config.name, "slave-type=bridge", "autoconnect=true",
                # above the default 0, so this profile wins over an old one for the same interface
                "autoconnect-priority=10"]
        text += ["", "[vlan]", "id=%d" % port.vlan_id, "parent=%s" % port.vlan_parent] if port.vlan_parent else []
        text += ["", "[ethernet]", "mtu=%d" % config.mtu] if config.mtu else []
        text += ["", "[bridge-port]", "vlans=%s" % _nm_vlans(port_tables.get(port.name))] if port_tables.get(port.name) else []
        files["%s-port-%s.nmconnection" % (file_stem(config.name), port.name)] = "\n".join(text) + "\n"
    return files


def _if_present(dev, command):
    """A stanza line that runs ``command`` only when ``dev`` exists: a guest's tap or veth is
    absent at boot, and one failing line would abort the whole stanza (no VLANs, no address)."""
    return "[ ! -e /sys/class/net/%s ] || %s" % (dev, command)


def _ifupdown_vlan_lines(dev, table, own):
    lines = []
    if table is None:
        return lines
    extra = " self" if own else ""
    quoted = shlex.quote(dev)
    # Start from an empty table: the kernel put the default PVID there when the port joined.
    reset = "bridge vlan del dev %s vid 1-4094%s 2>/dev/null || true" % (quoted, extra)
    adds = ["bridge vlan add dev %s vid %s%s" % (quoted, vids, "".join(" " + f for f in flags + extra.split()))
            for vids, flags in _table_items(table)]
    if own:
        return ["up %s" % step for step in [reset] + adds]
    return ["up %s" % _if_present(quoted, "{ %s; }" % "; ".join([reset] + adds))]


def render_ifupdown(config):
    """One stanza that builds the bridge with iproute2 commands, so it needs no bridge-utils
    hooks and carries VLAN filtering too. Port lines are skipped for ports absent at boot (a
    guest's tap joins when the guest starts); a VLAN sub-interface's parent is brought up before
    the sub-interface is made on it."""
    name = shlex.quote(config.name)
    options = []
    if config.stp is not None:
        options += ["stp_state", "1" if config.stp else "0"]
    if config.forward_delay is not None:
        options += ["forward_delay", str(config.forward_delay * 100)]
    if config.ageing_time is not None:  # iproute2 rather than bridge-utils' bridge_ageing: 1/100 s
        options += ["ageing_time", str(config.ageing_time * 100)]
    if config.vlan_filtering:  # off is the default, and kernels without VLAN filtering refuse even "0"
        options += ["vlan_filtering", "1"]
    if config.default_pvid is not None:
        options += ["vlan_default_pvid", str(config.default_pvid)]
    lines = ["pre-up ip link add name %s type bridge%s" % (name, "".join(" " + o for o in options))]
    lines += ["pre-up ip link set dev %s address %s" % (name, config.mac)] if config.mac else []
    for port in config.ports:
        dev = shlex.quote(port.name)
        if port.vlan_parent:
            parent = shlex.quote(port.vlan_parent)
            lines.append("pre-up " + _if_present(parent, "ip link set dev %s up" % parent))
            lines.append("pre-up [ -e /sys/class/net/%s ] || [ ! -e /sys/class/net/%s ] || ip link add link %s name %s type vlan id %d"
                         % (dev, parent, parent, dev, port.vlan_id))
        steps = ["ip link set dev %s mtu %d" % (dev, config.mtu)] if config.mtu else []
        steps += ["ip link set dev %s master %s" % (dev, name), "ip link set dev %s up" % dev]
        lines.append("pre-up " + _if_present(dev, "{ %s; }" % " && ".join(steps)))
    lines += ["pre-up ip link set dev %s mtu %d" % (name, config.mtu)] if config.mtu else []
    lines.append("up ip link set dev %s up" % name)
    for port in config.ports:
        lines += _ifupdown_vlan_lines(port.name, port.vlans, own=False)
    lines += _ifupdown_vlan_lines(config.name, config.vlans, own=True)
    lines += ["up ip addr add %s dev %s" % (cidr, name) for cidr in config.addresses]
    for dst, gateway, metric in config.routes:
        lines.append("up ip route replace %s%s dev %s%s" % (dst, " via " + gateway if gateway else "", name, " metric %s" % metric if metric else ""))
    lines.append("post-down ip link del dev %s" % name)
    lines += ["post-down ip link del dev %s" % shlex.quote(p.name) for p in config.ports if p.vlan_parent]
    text = config.header() + "auto %s\niface %s inet manual\n" % (config.name, config.name)
    return {file_stem(config.name).replace(".", "_"): text + "".join("    %s\n" % line for line in lines)}
