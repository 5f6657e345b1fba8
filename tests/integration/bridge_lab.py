# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the bridge integration tests: a hypervisor namespace with veth "guests"."""

from __future__ import annotations

import json
import uuid

import pytest


def link(lab, ns, name):
    """``ip -j -d link show dev NAME`` inside ``ns``, or None if there is no such link."""
    proc = lab.run(ns, ["ip", "-j", "-d", "link", "show", "dev", name], check=False)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def addresses(lab, ns, name):
    out = json.loads(lab.run(ns, ["ip", "-j", "addr", "show", "dev", name]).stdout)
    return sorted("%s/%s" % (a["local"], a["prefixlen"]) for a in out[0]["addr_info"] if a.get("scope") == "global")


def guests(lab, hv, count, subnet="10.20.0", prefix="g"):
    """``count`` guest namespaces, each cabled to ``vnetN`` in ``hv``, addressed SUBNET.(11+N)/24."""
    made = []
    for index in range(count):
        guest = lab.ns("%s%d" % (prefix, index))
        lab.veth(hv, "vnet%d" % index, guest, "eth0")
        lab.addr(guest, "eth0", "%s.%d/24" % (subnet, 11 + index))
        made.append(guest)
    return made


def kernel_lacks(lab, ns, argv):
    """None if this kernel can create the link ``argv`` describes (PROBE is its name), else why not."""
    probe = "hnp%s" % uuid.uuid4().hex[:6]
    proc = lab.run(ns, [a.replace("PROBE", probe) for a in argv], check=False)
    if proc.returncode != 0:
        return proc.stderr.strip() or "rc=%s" % proc.returncode
    lab.run(ns, ["ip", "link", "del", "dev", probe], check=False)
    return None


VLAN_FILTERING = ("bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)", ["ip", "link", "add", "PROBE", "type", "bridge", "vlan_filtering", "1"])


def dot1q(parent):
    return ("802.1Q VLAN devices (CONFIG_VLAN_8021Q)", ["ip", "link", "add", "link", parent, "name", "PROBE", "type", "vlan", "id", "4000"])


def require(lab, ns, feature):
    """Skip, saying why, when this kernel lacks ``feature`` (VLAN_FILTERING or dot1q(parent))."""
    what, argv = feature
    reason = kernel_lacks(lab, ns, argv)
    if reason:
        pytest.skip("this kernel has no %s: %s" % (what, reason))


def persist_dirs(lab):
    """Config directories under the test's temp dir, so nothing is ever written to /etc."""
    return {
        "networkd_dir": str(lab.tmp / "networkd"),
        "networkmanager_dir": str(lab.tmp / "nm"),
        "ifupdown_dir": str(lab.tmp / "ifupdown"),
    }
