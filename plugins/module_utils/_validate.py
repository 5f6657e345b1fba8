# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validators shared by every module. Each raises ValidationError naming the field and value."""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

IFNAMSIZ = 16  # Linux keeps 15 bytes and a NUL
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
COMMENT_MAX = 128  # nftables' limit on a rule comment
_COMMENT_FORBIDDEN = re.compile(r'["\\\x00-\x1f\x7f]')


def interface_name(field, value):
    """Return ``value`` if Linux would accept it as an interface name."""
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, "an interface name must be a non-empty string")
    if len(value.encode("utf-8")) >= IFNAMSIZ:
        raise ValidationError(field, value, "an interface name has at most %d bytes" % (IFNAMSIZ - 1))
    if value in (".", "..") or any(ch in value for ch in "/:") or any(ch.isspace() for ch in value):
        raise ValidationError(field, value, "an interface name cannot be '.' or '..' or contain '/', ':' or white space")
    if not value.isprintable():
        raise ValidationError(field, value, "an interface name cannot contain control characters")
    return value


def network(field, value, strict=True):
    """Parse a CIDR; with ``strict`` host bits must be zero."""
    try:
        return ipaddress.ip_network(str(value), strict=strict)
    except ValueError as exc:
        raise ValidationError(field, value, "not an IPv4 or IPv6 network in CIDR form (%s)" % exc)


def address(field, value):
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        raise ValidationError(field, value, "not an IPv4 or IPv6 address")


def port_range(field, value):
    """Accept 80, "80", "8000-8010" or "8000:8010"; return (low, high)."""
    text = str(value).strip()
    parts = re.split(r"[-:]", text)
    # isdigit() alone takes "²" (int() then raises) and other scripts' digits ("٣" is 3)
    if len(parts) not in (1, 2) or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValidationError(field, value, "a port is a number 1-65535, a range is LOW-HIGH")
    low, high = int(parts[0]), int(parts[-1])
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise ValidationError(field, value, "ports go from 1 to 65535")
    if low > high:
        raise ValidationError(field, value, "the range is reversed (%d > %d)" % (low, high))
    return low, high


def comment(field, value):
    """A rule comment must not break out of the quoting of nft or iptables-restore."""
    if value is None:
        return None
    text = str(value)
    if _COMMENT_FORBIDDEN.search(text):
        raise ValidationError(field, value, "a comment cannot contain double quotes, backslashes or control characters such as newlines")
    if len(text.encode("utf-8")) > COMMENT_MAX:
        raise ValidationError(field, value, "a comment has at most %d bytes" % COMMENT_MAX)
    return text or None


def dns_name(field, value, allow_wildcard=False):
    """A DNS name (a domain or host name) as dnsmasq and libvirt take it."""
    text = str(value).rstrip(".")
    if allow_wildcard and text.startswith("*."):
        text = text[2:]
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise ValidationError(field, value, "not a DNS name (labels of letters, digits, '-' and '_', 1-63 each, 253 in all)")
    return str(value).rstrip(".")


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")


def mac_address(field, value, unicast=True):
    """A MAC address as six hex pairs, lower case with ':'. With ``unicast`` a group (multicast or
    broadcast) address is refused: no NIC or DHCP client ever has one, so it is a typo."""
    text = value.lower().replace("-", ":") if isinstance(value, str) else ""
    if not _MAC.match(text):
        raise ValidationError(field, value, "a MAC address is six hex pairs such as 52:54:00:12:34:56")
    if unicast and int(text[:2], 16) & 1:
        raise ValidationError(field, value, "a multicast MAC address (lowest bit of the first byte set) is not a NIC's address")
    return text


_DNSMASQ_OPTION = re.compile(r"[a-z][a-z0-9-]*(=[^\x00-\x1f\x7f#]*)?\Z")


def dnsmasq_option(field, value):
    """One line of dnsmasq configuration, 'name' or 'name=value': no newline can add a second
    line and no '#' can comment out the rest of it."""
    if not isinstance(value, str) or not _DNSMASQ_OPTION.match(value):
        raise ValidationError(
            field, value, "a dnsmasq option is one line 'name' or 'name=value' without control characters or '#'"
        )
    return value


_LEASE_TIME = re.compile(r"(infinite|[0-9]{1,9}[smhdw]?)\Z")


def lease_time(field, value):
    """A dnsmasq lease time: seconds, a number with s/m/h/d/w, or 'infinite' (at least 2m, as dnsmasq
    raises anything shorter to two minutes without saying so)."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not _LEASE_TIME.match(text):
        raise ValidationError(field, value, "a lease time is seconds, a number with s, m, h, d or w, or 'infinite'")
    return text


def address_range(field, start, end, subnets):
    """A DHCP range: two addresses of one family, start <= end, inside one of ``subnets``
    (ip_interface objects: the addresses the server has there), and holding neither the network
    and broadcast address nor the server's own address. Returns (start, end, subnet)."""
    low = address("%s.start" % field, start)
    high = address("%s.end" % field, end)
    if low.version != high.version:
        raise ValidationError("%s.end" % field, end, "start and end are of different IP families")
    if low > high:
        raise ValidationError("%s.end" % field, end, "the range is reversed: it ends before its start %s" % low)
    for iface in subnets:
        net = iface.network
        if low.version == net.version and low in net and high in net:
            break
    else:
        raise ValidationError("%s.start" % field, start, "the range %s-%s is not inside the subnet of the bridge (%s)"
                              % (low, high, ", ".join(str(i) for i in subnets) or "none known"))
    reserved = [(iface.ip, "the bridge's own address")]
    if net.version == 4 and net.prefixlen < 31:
        reserved += [(net.network_address, "the network address"), (net.broadcast_address, "the broadcast address")]
    for addr, what in reserved:
        if low <= addr <= high:
            raise ValidationError("%s.start" % field, start, "the range %s-%s includes %s %s" % (low, high, what, addr))
    return low, high, iface
