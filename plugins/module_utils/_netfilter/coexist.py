# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coexistence with the other rule owners of a host: libvirt, Docker, ufw, firewalld.

For each forward, the forwarded packet is walked through every forward-hook base chain of the
others, with the reader and walker that diagnose uses too (_netfilter/foreign): every nftables
table (iptables-nft's included) and the iptables-legacy tables, which nft cannot see but the
kernel runs all the same. A drop in an iptables FORWARD chain (libvirt's reject rules, Docker's
DROP policy, ufw's chains, plain iptables), nft or legacy, is opened by our own chain jumped to
from the top of that FORWARD, which libvirt, Docker and ufw leave in place when they rebuild
their own chains. A drop anywhere else (firewalld's table, another nftables table) is not ours
to edit: the task fails before changing anything and says what to run.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import re
import socket
from dataclasses import dataclass

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import nft
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError, ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils import _sock_diag
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.model import PROTOCOLS
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.rules import route_device

PASS, BLOCKED, UNKNOWN = "pass", "blocked", "unknown"
OPENABLE_CHAIN = "FORWARD"
TOOLS = {("nft", "ip"): "iptables", ("nft", "ip6"): "ip6tables",
         ("legacy", "ip"): "iptables-legacy", ("legacy", "ip6"): "ip6tables-legacy"}


RULESET_READ = ["nft", "-j", "list", "ruleset"]


def read_ruleset(runner):
    """Everything nftables holds (iptables-nft rules included), or None without nft. Cached: a
    run reads it once (``Runner.prefetch`` may have started it), and a change forgets it."""
    if not runner.has("nft"):
        return None
    rc, out, _err = runner.read(RULESET_READ, check_rc=False, cached=True)
    return json.loads(out) if rc == 0 and out.strip() else None


def read_chains(runner, ruleset):
    """(chains, legacy saves): the others' chains from ``ruleset`` (already read, iptables-nft's
    tables included, so they are not read a second time from iptables-nft-save) and from the
    legacy tables, with one iptables-legacy-save per family whose legacy tables are loaded."""
    saves = nf.read_legacy(runner)
    # our tables are not even parsed: the question is whether the path is open without us
    chains = nf.chains_from_nft(ruleset, skip_tables=nft.OWN_TABLES) if ruleset else {}
    chains.update(nf.legacy_chains(saves))
    return without_own(chains), saves


def without_own(chains):
    """The chain map without our tables and without the jumps to our iptables chains."""
    out = {}
    for key, body in chains.items():
        if key[:2] in nft.OWN_TABLES:
            continue
        rules = [r for r in body["rules"] if r["target"] not in ipt.OWN_CHAINS]
        out[key] = dict(body, rules=rules)
    return out


def detect_managers(chains):
    """Names of the rule owners present, from table and chain names (legacy tables included)."""
    found = set()
    for _family, table, name in chains:
        if table == "firewalld":
            found.add("firewalld")
        if table.startswith("libvirt") or name.startswith("LIBVIRT_"):
            found.add("libvirt")
        elif name.startswith("DOCKER"):
            found.add("docker")
        elif name.startswith("ufw-") or name.startswith("ufw6-"):
            found.add("ufw")
    return sorted(found)


def openable_variant(key):
    """'nft' or 'legacy' when the chain ``key`` is an iptables filter FORWARD (the one place our
    chain can stand first), else None."""
    family, table, name = key
    if family not in ("ip", "ip6") or name != OPENABLE_CHAIN:
        return None
    variant = nf.variant_of(table)
    base = table[len(nf.LEGACY_PREFIX):] if variant == "legacy" else table
    return variant if variant and base == "filter" else None


def _label(key):
    family, table, name = key
    variant = nf.variant_of(table)
    if variant == "legacy":
        return "%s table %s chain %s" % (TOOLS[(variant, family)], table[len(nf.LEGACY_PREFIX):], name)
    return "%s %s chain %s" % (family, table, name)


def _where(result):
    key = result["key"]
    if result["by_policy"]:
        text = "%s, policy %s" % (_label(key), result["verdict"])
    else:
        text = "%s, rule %s" % (_label(key), result["by"])
    if result["doubts"]:
        text += " (after rules not understood: %s)" % "; ".join(result["doubts"][:3])
    return text


def outcome(result):
    """pass, blocked or unknown for one base chain's walk. A drop behind a rule that was not
    understood, or a policy reached past one, is unknown, never a silent pass or a sure drop."""
    verdict = result["verdict"]
    if verdict == "accept":
        return UNKNOWN if result["by_policy"] and result["doubts"] else PASS
    if verdict in ("drop", "reject"):
        return UNKNOWN if result["doubts"] else BLOCKED
    return UNKNOWN


def _firewalld_commands(fwd, proto):
    family = "ipv4" if fwd.family == 4 else "ipv6"
    port = fwd.destination_port[0] if fwd.destination_port[0] == fwd.destination_port[1] else "%d-%d" % fwd.destination_port
    return (
        "firewall-cmd --permanent --new-policy hnet-forward; "
        "firewall-cmd --permanent --policy hnet-forward --add-ingress-zone ANY --add-egress-zone ANY; "
        "firewall-cmd --permanent --policy hnet-forward --add-rich-rule "
        "'rule family=\"%s\" destination address=\"%s\" port port=\"%s\" protocol=\"%s\" accept'; "
        "firewall-cmd --reload" % (family, fwd.destination, port, proto)
    )


def _instructions(key, fwd, proto, backend_variant):
    family, table, _name = key
    variant = openable_variant(key)
    if table == "firewalld":
        return "open it through firewalld and run the task again: %s" % _firewalld_commands(fwd, proto)
    if variant:
        ports = "%d" % fwd.destination_port[0] if fwd.destination_port[0] == fwd.destination_port[1] else "%d:%d" % fwd.destination_port
        command = "%s -I FORWARD 1 -d %s -p %s --dport %s -m conntrack --ctstate DNAT -j ACCEPT" % (
            TOOLS[(variant, family)], fwd.destination, proto, ports)
        if backend_variant and backend_variant != variant:
            how = ("this task writes iptables-%s rules, which do not open a drop in iptables-%s: use "
                   "backend=nftables (which opens it) or iptables_variant=%s" % (backend_variant, variant, variant))
        else:
            how = "run the task with coexistence=open, which opens it with a chain of ours at the top of FORWARD"
        return "%s, or run: %s" % (how, command)
    return (
        "add an accept for forwarded traffic to %s %s/%s (ct status dnat) to the configuration that owns "
        "table %s %s, or remove that drop, and run the task again"
        % (fwd.destination, proto, fwd.destination_port[0], family, table)
    )


def _packet(fwd, proto, oif):
    packet = {
        "nfproto": "ipv4" if fwd.family == 4 else "ipv6", "iif": fwd.in_interface, "oif": oif,
        "saddr": None, "daddr": fwd.destination, "proto": proto, "sport": None,  # any outside client
        "dport": fwd.destination_port[0], "ct": ["new", "dnat"],
    }
    # An interface we do not know (any input interface, no route to the destination) decides
    # nothing either way: a rule that names one is not understood rather than not matching.
    packet["unknown_fields"] = tuple(name for name in ("iif", "oif") if packet[name] is None)
    return packet


def assess(chains, forwards, policy, routes, companions=(), ours=None):
    """Walk every forward through the others' chains.

    Returns (report, needs): one report entry per finding, and the set of (variant, family)
    whose FORWARD chain needs our companion chain. Raises before anything is changed when a drop
    cannot be opened and ``policy`` is not 'ignore', or when any drop is found and ``policy`` is
    'fail'. ``companions`` are the iptables variants a companion chain can go into (nftables
    backend); ``ours`` is the variant of the iptables backend, whose chains always hang at the
    top of its FORWARD. ``routes`` (`ip -j route show` of both families) give each forward's
    output interface.
    """
    if not forwards or not chains:
        return [], set()
    managers = detect_managers(chains)
    bases = nf.forward_bases(chains)
    report = [{"managers": managers}] if managers else []
    needs = set()
    problems = []
    for fwd in forwards:
        oif = route_device(routes, fwd.destination)
        for proto in PROTOCOLS[fwd.protocol]:
            for result in nf.forward_verdicts(chains, _packet(fwd, proto, oif), bases):
                found = outcome(result)
                if found == PASS:
                    continue
                key = result["key"]
                entry = {
                    "destination": fwd.destination, "protocol": proto, "port": fwd.destination_port[0],
                    "outcome": found, "where": _where(result),
                }
                variant = openable_variant(key) if found == BLOCKED else None
                by_ours = variant is not None and variant == ours and policy != "fail"
                by_companion = variant is not None and variant in companions and policy == "open"
                if by_ours or by_companion:
                    if by_companion:
                        needs.add((variant, fwd.family))
                    entry["action"] = "opened by our chain jumped to from the top of %s FORWARD" % TOOLS[(variant, key[0])]
                elif found == BLOCKED and policy != "ignore":
                    problems.append("%s would drop %s %s port %s: %s" % (
                        entry["where"], proto, fwd.destination, fwd.destination_port[0],
                        _instructions(key, fwd, proto, ours)))
                    entry["action"] = "refused"
                else:
                    entry["action"] = "none (reported only)"
                report.append(entry)
    if problems:
        raise HypervisorNetworkError(
            "forwarded traffic would not get through: " + " | ".join(problems) + ". Nothing was changed.",
            coexistence=report,
        )
    return report, needs


# -- the host's own services ----------------------------------------------------------------------
# A forward catches new connections to the host's addresses before any local socket sees them: a
# forward of port 22 with no scope cuts the SSH session Ansible rides on. The host's listeners are
# another owner of the port, and the forward is refused unless the user says otherwise.

PROC_NET = {("tcp", 4): "/proc/net/tcp", ("tcp", 6): "/proc/net/tcp6", ("udp", 4): "/proc/net/udp", ("udp", 6): "/proc/net/udp6"}
_PROCESS = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+)')


@dataclass(frozen=True)
class Listener:
    """A socket of the host waiting for connections (TCP) or datagrams (UDP). ``address`` None
    is every address; ``family`` None is both (an IPv6 socket that takes IPv4 too); ``device`` is
    the interface the socket is bound to, if any; ``processes`` are (name, pid) pairs."""

    proto: str
    port: int
    address: str | None = None
    family: int | None = None
    device: str | None = None
    processes: tuple = ()

    def describe(self):
        owners = ", ".join("%s (pid %s)" % owner for owner in self.processes) or "socket (no process named by ss or /proc/net)"
        where = self.address or ("*" if self.family is None else "0.0.0.0" if self.family == 4 else "[::]")
        return "%s listening on %s %s:%d%s" % (owners, self.proto, where, self.port, "%" + self.device if self.device else "")


def _bound_to(addr, dual_stack):
    """(address, family) of a listener bound to ``addr``, in Listener's terms: an IPv4-mapped
    address is IPv4, a wildcard has no address, and a wildcard that also takes IPv4
    (``dual_stack``: an IPv6 socket without IPV6_V6ONLY) has no family."""
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr.is_unspecified:
        return None, None if dual_stack else addr.version
    return str(addr), addr.version


def parse_ss(text):
    """Listeners from `ss -H -l -n -p -t -u` (columns: netid, state, queues, local, peer, process).
    The local column is ADDR[%DEV]:PORT with ``*`` for a dual-stack wildcard and brackets around
    IPv6 (``[::]`` is an IPv6-only wildcard)."""
    found = []
    for line in (text or "").splitlines():
        parts = line.split(None, 6)
        if len(parts) < 6 or parts[0] not in ("tcp", "udp"):
            continue
        host, _sep, port = parts[4].rpartition(":")
        if not port.isdigit():
            continue
        host, _sep, device = host.partition("%")
        if host == "*":
            address, family = None, None
        else:
            try:
                address, family = _bound_to(ipaddress.ip_address(host.strip("[]")), dual_stack=False)
            except ValueError:
                continue
        processes = tuple((name, int(pid)) for name, pid in _PROCESS.findall(parts[6] if len(parts) > 6 else ""))
        found.append(Listener(parts[0], int(port), address, family, device or None, processes))
    return found


def parse_proc_net(text, proto, family):
    """Listeners from /proc/net/tcp, tcp6, udp or udp6 (hex, host byte order per 32-bit word),
    the fallback where the kernel offers no sock_diag: no devices and no process names there."""
    found = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        state = fields[3]
        if (proto == "tcp" and state != "0A") or (proto == "udp" and state != "07"):
            continue
        hex_addr, _sep, hex_port = fields[1].partition(":")
        raw = bytes.fromhex(hex_addr)
        packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        # An IPv6 wildcard may take IPv4 too (bindv6only is per socket and not shown here).
        address, bound_family = _bound_to(ipaddress.ip_address(packed), dual_stack=family == 6)
        found.append(Listener(proto, int(hex_port, 16), address, bound_family))
    return found


def read_listeners(runner):
    """Every listener, with process names where ss is installed."""
    if runner.has("ss"):
        return parse_ss(runner.read(["ss", "-H", "-l", "-n", "-p", "-t", "-u"])[1])
    return read_kernel_listeners()


def read_kernel_listeners():
    """Every listener of this network namespace as ``ss -l`` sees it (bound device, IPv6-only
    flag), asked of the kernel over sock_diag, without a process and without a walk of every
    established connection; from /proc/net where the kernel offers no sock_diag. No process
    names: ss's -p finds those by walking every process's open files."""
    try:
        sockets = _sock_diag.listening_sockets()
    except OSError:
        return read_proc_listeners()
    return [_listener_of(sock) for sock in sockets]


def _listener_of(sock):
    """A Listener from a sock_diag socket, its address read as parse_ss reads one (_bound_to),
    with the bound device by name."""
    dual_stack = sock.family == 6 and not sock.v6only
    address, family = _bound_to(ipaddress.ip_address(sock.address), dual_stack)
    device = None
    if sock.ifindex:
        try:
            device = socket.if_indextoname(sock.ifindex)
        except OSError:
            device = "#%d" % sock.ifindex  # gone since: no forward's in_interface names it
    return Listener(sock.proto, sock.port, address, family, device)


def read_proc_listeners():
    """Every listener of this network namespace from /proc/net, where there is no sock_diag. To
    print these files the kernel walks every bucket of the established-connection hash table."""
    found = []
    for (proto, family), path in sorted(PROC_NET.items()):
        try:
            with open(path, "r", encoding="ascii") as handle:
                found.extend(parse_proc_net(handle.read(), proto, family))
        except OSError:
            continue
    return found


def _by_port(listeners):
    """(sorted ports, listeners in the same order): a forward's port range is then two bisections,
    not a pass over every listener (1000 forwards against a host's few dozen listeners)."""
    ordered = sorted(listeners, key=lambda listener: listener.port)
    return [listener.port for listener in ordered], ordered


def _taken(fwd, indexed, addresses_of):
    """The first listener of ``indexed`` (``_by_port``) that ``fwd`` would take over, or None."""
    ports, ordered = indexed
    low, high = fwd.host_port
    for listener in ordered[bisect.bisect_left(ports, low):bisect.bisect_right(ports, high)]:
        if takes_over(fwd, listener, addresses_of):
            return listener
    return None


def takes_over(fwd, listener, addresses_of):
    """Would ``fwd`` catch connections meant for ``listener``? The forward's DNAT catches packets
    to every local address (or to host_address), arriving on in_interface if set, and with
    hairpin also the host's own connections. ``addresses_of(ifname)`` lists an interface's
    addresses. A scope excludes the listener only where it really does: a wildcard listener is
    reachable through every interface, so in_interface alone does not exclude it."""
    if listener.proto not in PROTOCOLS[fwd.protocol] or not fwd.host_port[0] <= listener.port <= fwd.host_port[1]:
        return False
    if listener.family is not None and listener.family != fwd.family:
        return False
    local_only = listener.device == "lo" or (listener.address is not None and ipaddress.ip_address(listener.address).is_loopback)
    if local_only and not fwd.hairpin:
        return False  # from outside, nothing reaches a loopback socket; only the hairpin DNAT of local traffic does
    if fwd.host_address and listener.address is not None and listener.address != fwd.host_address:
        return False
    if fwd.in_interface and not fwd.hairpin:
        if listener.device and listener.device != fwd.in_interface:
            return False
        if listener.address is not None and listener.address not in addresses_of(fwd.in_interface):
            return False
    return True


def refuse_local_takeover(runner, forwards, index_of):
    """Raise a ValidationError naming the first forward of ``forwards`` (those being added or
    changed) that would catch connections meant for a listener of this host, and the process.
    ``index_of`` maps a forward's key to its position in config."""
    if not forwards:
        return
    cache = {}

    def addresses_of(ifname):
        if "all" not in cache:
            cache["all"] = runner.read_json(["ip", "-j", "addr", "show"]) or []
        return {info.get("local") for link in cache["all"] if link.get("ifname") == ifname
                for info in link.get("addr_info", [])}

    # The kernel's own list first (ss's view without process names; /proc/net's, which has no
    # device binding and no IPv6-only flag and so flags a superset, where there is no
    # sock_diag): where it finds nothing (nearly every run), ss has nothing to add; otherwise ss
    # decides and names the process.
    kernel = _by_port(read_kernel_listeners())
    suspects = [fwd for fwd in forwards if _taken(fwd, kernel, addresses_of)]
    if not suspects:
        return
    listeners = _by_port(read_listeners(runner))
    for fwd in suspects:
        listener = _taken(fwd, listeners, addresses_of)
        if listener is not None:
            index = index_of.get(fwd.key)
            field = "config[%d].host_port" % index if index is not None else "config"
            raise ValidationError(
                field, fwd.to_dict()["host_port"],
                "this host's own %s; the forward to %s would take its new connections. Scope the forward "
                "(host_address, or in_interface where the listener is bound to another address or interface), "
                "or set allow_local_port_takeover: true if that is what you want. Nothing was changed."
                % (listener.describe(), fwd.destination),
            )
