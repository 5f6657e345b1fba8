# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired-state model of masquerade rules and port forwards, their validation and the
resource-module state vocabulary (merged, replaced, overridden, deleted). All pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ansible_collections.hypervisor.network.plugins.module_utils import _validate as check
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

PROTOCOLS = {"tcp": ("tcp",), "udp": ("udp",), "both": ("tcp", "udp")}


def _ports_text(ports):
    low, high = ports
    return str(low) if low == high else "%d-%d" % (low, high)


@dataclass(frozen=True)
class Masquerade:
    source: str
    out_interface: str | None = None
    exclude_own_subnet: bool = True
    comment: str | None = None

    @property
    def family(self):
        return 6 if ":" in self.source else 4

    @property
    def key(self):
        return (self.source, self.out_interface or "")

    def to_dict(self):
        return _without_empties({
            "source": self.source,
            "out_interface": self.out_interface,
            "exclude_own_subnet": self.exclude_own_subnet,
            "comment": self.comment,
        })


@dataclass(frozen=True)
class PortForward:
    protocol: str
    host_port: tuple
    destination: str
    destination_port: tuple
    in_interface: str | None = None
    host_address: str | None = None
    allowed_sources: tuple = ()
    hairpin: bool = False
    hairpin_sources: tuple = ()
    comment: str | None = None

    @property
    def family(self):
        # destination is a normalised address: only IPv6 text has a colon
        return 6 if ":" in self.destination else 4

    @property
    def key(self):
        return (self.protocol, self.host_address or "", self.in_interface or "", self.host_port)

    def to_dict(self):
        return _without_empties({
            "protocol": self.protocol,
            "host_port": _ports_text(self.host_port),
            "destination": self.destination,
            "destination_port": _ports_text(self.destination_port),
            "in_interface": self.in_interface,
            "host_address": self.host_address,
            "allowed_sources": list(self.allowed_sources),
            "hairpin": self.hairpin,
            "hairpin_sources": list(self.hairpin_sources),
            "comment": self.comment,
        })


def _without_empties(fields):
    """Leave out what is not set, as the gathered facts of network resource modules do: the
    dicts stay valid config, and a thousand forwards make a result half the size."""
    return {name: value for name, value in fields.items() if value is not None and value != []}


# ---------------------------------------------------------------------------------------------
# Validation of user input into partial items (None = not given, for `merged`)


# Characters a rule string cannot carry safely in both backends: a double quote ends an nft
# string (nft has no escape for it) and iptables-save prints interface names unquoted, so a quote
# or backslash in one does not read back; a trailing * (nft) or + (iptables) turns an interface
# name into a wildcard. Checked by the model for the user's field and again by each renderer.
_RULE_TEXT_FORBIDDEN = '"\\'
_WILDCARD_ENDS = "*+"


def rule_text(field_name, value, interface=False):
    """``value`` if it can stand inside a rule of either backend exactly as given, else a
    ValidationError naming ``field_name``. The one policy behind every string that reaches an
    nft script or an iptables-restore file; ``interface`` adds the interface-name rules."""
    if interface:
        check.interface_name(field_name, value)
        if value[-1] in _WILDCARD_ENDS:
            raise ValidationError(field_name, value, "an interface name ending in '*' or '+' would be a wildcard in nft or iptables")
    if any(ch in _RULE_TEXT_FORBIDDEN for ch in value):
        raise ValidationError(field_name, value, "a rule string cannot contain double quotes or backslashes")
    if not value.isprintable():
        raise ValidationError(field_name, value, "a rule string cannot contain control characters such as newlines")
    return value


def _comment(field_name, value):
    text = check.comment(field_name, value)
    return rule_text(field_name, text) if text is not None else None


def _strict_network(field_name, value):
    net = check.network(field_name, value, strict=False)
    try:
        ipaddress.ip_network(str(value))
    except ValueError:
        raise ValidationError(field_name, value, "host bits are set; did you mean %s?" % net)
    return net


def parse_masquerade(index, raw):
    where = "config[%d]" % index
    if not isinstance(raw, dict):
        raise ValidationError(where, raw, "each rule is a dictionary")
    if not raw.get("source"):
        raise ValidationError(where + ".source", raw.get("source"), "source is required")
    source = _strict_network(where + ".source", raw["source"])
    if source.prefixlen == 0:
        raise ValidationError(where + ".source", raw["source"],
                              "masquerading every source would also rewrite the host's own and forwarded traffic; name the guest subnet")
    out_interface = raw.get("out_interface")
    if out_interface is not None:
        rule_text(where + ".out_interface", out_interface, interface=True)
    return {
        "source": str(source),
        "out_interface": out_interface,
        "exclude_own_subnet": raw.get("exclude_own_subnet"),
        "comment": _comment(where + ".comment", raw.get("comment")),
    }


def parse_port_forward(index, raw):
    where = "config[%d]" % index
    if not isinstance(raw, dict):
        raise ValidationError(where, raw, "each forward is a dictionary")
    protocol = raw.get("protocol") or "tcp"
    if protocol not in PROTOCOLS:
        raise ValidationError(where + ".protocol", protocol, "one of tcp, udp, both")
    if raw.get("host_port") in (None, ""):
        raise ValidationError(where + ".host_port", raw.get("host_port"), "host_port is required")
    host_port = check.port_range(where + ".host_port", raw["host_port"])
    destination = raw.get("destination")
    dest_addr = _guest_address(where + ".destination", destination) if destination else None
    dest_port = None
    if raw.get("destination_port") not in (None, ""):
        dest_port = check.port_range(where + ".destination_port", raw["destination_port"])
    host_address = raw.get("host_address")
    if host_address:
        host_addr = check.address(where + ".host_address", host_address)
        if dest_addr and host_addr.version != dest_addr.version:
            raise ValidationError(where + ".host_address", host_address, "must be of the same IP version as destination %s" % destination)
        host_address = str(host_addr)
    in_interface = raw.get("in_interface")
    if in_interface is not None:
        rule_text(where + ".in_interface", in_interface, interface=True)
    sources = raw.get("allowed_sources")
    if sources is not None:
        nets = [check.network("%s.allowed_sources[%d]" % (where, i), s, strict=False) for i, s in enumerate(sources)]
        for i, net in enumerate(nets):
            if dest_addr and net.version != dest_addr.version:
                raise ValidationError("%s.allowed_sources[%d]" % (where, i), sources[i], "must be of the same IP version as destination %s" % destination)
        sources = tuple(sorted({str(n) for n in nets}, key=network_sort_key))
    hairpin_sources = raw.get("hairpin_sources")
    if hairpin_sources is not None:
        hairpin_sources = tuple(
            sorted({str(check.network("%s.hairpin_sources[%d]" % (where, i), s, strict=False)) for i, s in enumerate(hairpin_sources)}, key=network_sort_key)
        )
    return {
        "protocol": protocol,
        "host_port": host_port,
        "destination": str(dest_addr) if dest_addr else None,
        "destination_port": dest_port,
        "in_interface": in_interface,
        "host_address": host_address,
        "allowed_sources": sources,
        "hairpin": raw.get("hairpin"),
        "hairpin_sources": hairpin_sources,
        "comment": _comment(where + ".comment", raw.get("comment")),
    }


def _guest_address(field_name, value):
    """A forward's destination: one unicast address a guest can have."""
    addr = check.address(field_name, value)
    if addr.is_unspecified or addr.is_multicast or addr.is_loopback or str(addr) == "255.255.255.255":
        raise ValidationError(field_name, value, "a forward's destination is one guest's unicast address, "
                              "not an unspecified, broadcast, multicast or loopback address")
    return addr


def network_sort_key(text):
    """Networks in numeric order, IPv4 before IPv6: the one order of every address list."""
    net = ipaddress.ip_network(text)
    return (net.version, int(net.network_address), net.prefixlen)


def masquerade_key(partial):
    return (partial["source"], partial.get("out_interface") or "")


def port_forward_key(partial):
    return (partial["protocol"], partial.get("host_address") or "", partial.get("in_interface") or "", partial["host_port"])


def complete_masquerade(partial, base=None):
    """Fill the fields the user left out: from ``base`` (merged) or from defaults."""
    fields = base.to_dict() if base else {"exclude_own_subnet": True, "comment": None}
    for name, value in partial.items():
        if value is not None:
            fields[name] = value
    return Masquerade(
        source=fields["source"],
        out_interface=fields.get("out_interface"),
        exclude_own_subnet=bool(fields["exclude_own_subnet"]),
        comment=fields.get("comment"),
    )


def complete_port_forward(where, partial, base=None, connected=()):
    """Make a PortForward from a partial item. ``connected`` lists the host's directly
    connected subnets, used for the default hairpin sources."""
    merged = {}
    if base:
        merged = {
            "destination": base.destination,
            "destination_port": base.destination_port,
            "allowed_sources": base.allowed_sources,
            "hairpin": base.hairpin,
            "hairpin_sources": base.hairpin_sources,
            "comment": base.comment,
        }
    for name, value in partial.items():
        if value is None:
            continue
        if name == "allowed_sources" and base:
            value = tuple(sorted(set(value) | set(base.allowed_sources), key=network_sort_key))
        merged[name] = value
    if not merged.get("destination"):
        raise ValidationError(where + ".destination", None, "destination is required")
    host_port = merged["host_port"]
    dest_port = merged.get("destination_port") or host_port
    if dest_port[1] - dest_port[0] not in (0, host_port[1] - host_port[0]):
        raise ValidationError(
            where + ".destination_port", _ports_text(dest_port),
            "a destination range must be as long as host_port %s, or a single port" % _ports_text(host_port),
        )
    hairpin = bool(merged.get("hairpin"))
    hairpin_sources = merged.get("hairpin_sources") or ()
    destination = merged["destination"]
    if hairpin and not hairpin_sources:
        dest = ipaddress.ip_address(destination)
        hairpin_sources = tuple(str(net) for net in connected if net.version == dest.version and dest in net)
        if not hairpin_sources:
            raise ValidationError(
                where + ".hairpin", True,
                "no directly connected subnet of this host contains destination %s; set hairpin_sources" % destination,
            )
    # a normalised address (parse_port_forward, or read back from the host): only IPv6 text has
    # a colon, as PortForward.family knows; no second parse of every destination
    version = 6 if ":" in destination else 4
    # Checked here too, where the destination may come from the forward already on the host
    # (merged without a destination): an IPv6 source would be rendered into an IPv4 rule.
    for name in ("hairpin_sources", "allowed_sources"):
        for source in (hairpin_sources if name == "hairpin_sources" else merged.get("allowed_sources") or ()):
            if ipaddress.ip_network(source).version != version:
                raise ValidationError("%s.%s" % (where, name), source,
                                      "must be of the same IP version as destination %s" % destination)
    if not hairpin:
        hairpin_sources = ()
    return PortForward(
        protocol=merged["protocol"],
        host_port=host_port,
        destination=destination,
        destination_port=dest_port,
        in_interface=merged.get("in_interface"),
        host_address=merged.get("host_address"),
        allowed_sources=tuple(merged.get("allowed_sources") or ()),
        hairpin=hairpin,
        hairpin_sources=tuple(hairpin_sources),
        comment=merged.get("comment"),
    )


# ---------------------------------------------------------------------------------------------
# State vocabulary


def desired_items(state, partials, have, key_of, complete):
    """Apply a resource-module state to ``have`` (a list of complete items).

    ``partials`` are validated user items (None for fields not given). Returns the list of
    complete items that should exist afterwards, in a stable order.
    """
    by_key = {item.key: item for item in have}
    if state == "overridden":
        return [complete(i, p, None) for i, p in enumerate(partials)]
    if state == "deleted":
        if not partials:
            return []
        gone = {key_of(p) for p in partials}
        return [item for item in have if item.key not in gone]
    result = dict(by_key)
    for i, partial in enumerate(partials):
        key = key_of(partial)
        base = by_key.get(key) if state == "merged" else None
        result[key] = complete(i, partial, base)
    return list(result.values())


# What a forward compiles into its rules besides its protocol: two forwards that catch the same
# packets must agree on all of it. Rules that differ only in their sources are saved by iptables
# as lines that read back as one rule, and the hairpin rules of one target are read back by it
# alone, so forwards that overlap and differ here could not be told apart again: the next run
# would read other forwards than it planned and report a change every time.
_SHARED_FIELDS = ("allowed_sources", "hairpin", "hairpin_sources", "comment")


def check_conflicts(forwards, places=None):
    """Two forwards that catch the same packets are an error unless they are one forward
    given twice (they differ at most in their protocol: ``both`` next to ``tcp``, say).

    Earlier forwards are indexed by protocol, IP family and host port, so that each forward is
    compared only with those whose host ports overlap its own (not with every earlier one: N*N
    comparisons took 14 s at N = 1000). ``places`` maps a forward's key to its index in the
    user's config (a forward missing from it is one already in place on the host); without it,
    forwards are named by their position. The error names the field that differs, in the later
    config entry of the two, and the first conflicting earlier forward.
    """
    def place(index, fwd):
        return index if places is None else places.get(fwd.key, -1)

    singles = {}  # (proto, family) -> {port: [(seq, index, forward)]}, single host ports
    ranges = {}  # (proto, family) -> [(seq, index, forward)], host port ranges
    seq = 0
    for index, fwd in enumerate(forwards):
        family = fwd.family
        low, high = fwd.host_port
        for proto in PROTOCOLS[fwd.protocol]:
            by_port = singles.setdefault((proto, family), {})
            candidates = [
                entry for entry in ranges.get((proto, family), ())
                if not (low > entry[2].host_port[1] or entry[2].host_port[0] > high)
            ]
            if high - low < len(by_port):
                for port in range(low, high + 1):
                    candidates.extend(by_port.get(port, ()))
            else:
                candidates.extend(entry for port, entries in by_port.items() if low <= port <= high for entry in entries)
            for _seq, other_index, other in sorted(candidates, key=lambda entry: entry[0]):
                if fwd.host_address and other.host_address and fwd.host_address != other.host_address:
                    continue
                if fwd.in_interface and other.in_interface and fwd.in_interface != other.in_interface:
                    continue
                _refuse_overlap(proto, (place(index, fwd), fwd), (place(other_index, other), other))
            entry = (seq, index, fwd)
            seq += 1
            if low == high:
                by_port.setdefault(low, []).append(entry)
            else:
                ranges.setdefault((proto, family), []).append(entry)


def _refuse_overlap(proto, one, other):
    """Raise for two forwards, (config index, forward), that catch ``proto`` packets on
    overlapping host ports, unless they are one forward given twice. The error is about the
    later config entry of the two; the other is named by its entry or, at index -1, as the
    forward already in place."""
    (index, fwd), (other_index, other) = sorted((one, other), key=lambda pair: pair[0], reverse=True)
    same_target = (fwd.destination, fwd.destination_port) == (other.destination, other.destination_port)
    if not same_target or fwd.host_port != other.host_port:
        field, value = "host_port", _ports_text(fwd.host_port)
        reason = "%s port %s is already forwarded to %s:%s by %s" % (
            proto, _ports_text(other.host_port), other.destination, _ports_text(other.destination_port),
            _forward_name(other_index, other))
    else:
        differing = [name for name in _SHARED_FIELDS if getattr(fwd, name) != getattr(other, name)]
        if not differing:
            return
        field = differing[0]
        value, theirs = (_shown(getattr(item, field)) for item in (fwd, other))
        reason = ("%s port %s is already forwarded to the same target by %s with %s %r; forwards that "
                  "catch the same packets must agree on it (give one forward all its sources)"
                  % (proto, _ports_text(fwd.host_port), _forward_name(other_index, other), field, theirs))
    raise ValidationError("%s.%s" % (_forward_name(index, fwd), field), value, reason)


def _forward_name(index, fwd):
    if index < 0:
        return "the forward already in place for %s port %s" % (fwd.protocol, _ports_text(fwd.host_port))
    return "config[%d]" % index


def _shown(value):
    return list(value) if isinstance(value, tuple) else value


def dedupe(items):
    """Keep the first of identical items; order stays stable. A dict keeps the first of equal
    keys in insertion order, and hashes each item once (a frozen dataclass hashes all of its
    fields every time: 3000 rules at 1000 forwards)."""
    return list(dict.fromkeys(items))


def sort_items(items):
    return sorted(items, key=lambda item: repr(item.key))
