# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validators shared by every module. Each raises ValidationError naming the field and value."""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

IFNAMSIZ = 16  # Linux keeps 15 bytes and a NUL
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
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
    if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
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
