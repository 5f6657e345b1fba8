# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A picture of a host's guest networking as inline SVG, from a diagnose result.

Three columns: the uplink (the default route's device) on the left, one box per network in
the middle (bridge, addresses, forward mode, DNS forwarders), its ports and its guests (from
static DHCP hosts and leases) on the right.
A NAT or routed network is joined to the uplink by a line; each port forward is a dashed line
from the uplink to the guest it reaches. Every element is coloured by the worst status of the
findings that concern it, so the picture shows where to look first.

Built with ElementTree (every text is escaped by it), no scripts, no external resources, so it
can sit in the HTML report as it is. Pure: a result in, a string out; the layout is plain
arithmetic so that tests can count what it drew.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.model import FAIL, OK, WARN

SVG_NS = "http://www.w3.org/2000/svg"
FILL = {FAIL: "#fde2e2", WARN: "#fff4d6", OK: "#e6f6e6", None: "#f4f4f4"}
STROKE = {FAIL: "#c62828", WARN: "#b26a00", OK: "#2e7d32", None: "#777777"}
RANK = {FAIL: 0, WARN: 1, OK: 2, None: 3}

COL_X = (20, 300, 640)
BOX_W = (220, 280, 260)
LINE_H = 16
PAD = 10
GAP = 24
# Checks about the host as a whole, shown on the uplink.
HOST_CHECKS = ("ip_forward", "nameservers", "libvirt_connection", "libvirtd_log", "port53", "firewalld_zone")


def _worst(findings):
    statuses = [f["status"] for f in findings]
    return min(statuses, key=RANK.get) if statuses else None


def _tokens(subject):
    return set(re.split(r"[\s():/,]+", subject))


def _about(findings, *needles):
    """Findings whose subject names one of ``needles``: a bridge, a port or an address as a word
    of its own (br0 is not virbr0), a network as "(name)"."""
    needles = [n for n in needles if n]
    return [f for f in findings
            if any((n in f["subject"]) if n.startswith("(") else (n in _tokens(f["subject"])) for n in needles)]


def _net_findings(findings, net):
    keys = [net.get("bridge"), "(%s)" % net["name"]] + [a.split("/")[0] for a in net.get("addresses") or []]
    return [f for f in _about(findings, *keys) if f["check"] not in ("tap_drops", "forward_path", "neighbours")] + \
        [f for f in findings if f["check"] == "neighbours" and net.get("bridge") in _tokens(f["subject"])]


def _box(parent, x, y, width, lines, status, kind, title=None):
    """A rectangle with one text line per entry; returns its height."""
    height = PAD * 2 + LINE_H * len(lines)
    group = ET.SubElement(parent, "g", {"class": "%s %s" % (kind, status or "none")})
    if title:
        ET.SubElement(group, "title").text = title
    ET.SubElement(group, "rect", {"x": str(x), "y": str(y), "width": str(width), "height": str(height), "rx": "6",
                                  "fill": FILL[status], "stroke": STROKE[status], "stroke-width": "1.5"})
    for index, line in enumerate(lines):
        text = ET.SubElement(group, "text", {"x": str(x + PAD), "y": str(y + PAD + LINE_H * (index + 1) - 4),
                                             "font-weight": "bold" if index == 0 else "normal"})
        text.text = line
    return height


def _line(parent, x1, y1, x2, y2, status, kind, label=None, dashed=False):
    group = ET.SubElement(parent, "g", {"class": "%s %s" % (kind, status or "none")})
    attrs = {"x1": str(x1), "y1": str(y1), "x2": str(x2), "y2": str(y2), "stroke": STROKE[status], "stroke-width": "2"}
    if dashed:
        attrs["stroke-dasharray"] = "6 4"
    ET.SubElement(group, "line", attrs)
    if label:
        text = ET.SubElement(group, "text", {"x": str((x1 + x2) // 2), "y": str((y1 + y2) // 2 - 4), "text-anchor": "middle"})
        text.text = label


def render(result, host="host", standalone=True):
    """The SVG (a string) of one diagnose result. ``standalone`` declares the SVG namespace, as
    an .svg file needs; inside an HTML page the parser puts <svg> there by itself, and the page
    then names no URL at all."""
    findings = result.get("findings") or []
    networks = result.get("networks") or []
    svg = ET.Element("svg", {"class": "hn-picture", "font-family": "sans-serif", "font-size": "12"})
    if standalone:
        svg.set("xmlns", SVG_NS)
    ET.SubElement(svg, "title").text = "guest networking of %s" % host
    body = ET.SubElement(svg, "g")

    uplink = result.get("uplink") or "no default route"
    host_status = _worst([f for f in findings if f["check"] in HOST_CHECKS])
    host_problems = [f for f in findings if f["check"] in HOST_CHECKS and f["status"] != OK]
    uplink_lines = [uplink, "host %s" % host] + ["%s: %s" % (f["check"], f["status"]) for f in host_problems][:6]
    uplink_y = GAP
    uplink_h = _box(body, COL_X[0], uplink_y, BOX_W[0], uplink_lines, host_status, "uplink",
                    title="; ".join(f["summary"] for f in findings if f["check"] in HOST_CHECKS and f["status"] != OK))
    uplink_mid = (COL_X[0] + BOX_W[0], uplink_y + uplink_h // 2)

    y = GAP
    guest_y = GAP
    guest_anchor = {}  # guest address -> (x, y) of the left middle of its box
    for net in networks:
        net_findings = _net_findings(findings, net)
        status = _worst(net_findings)
        lines = ["%s (%s)" % (net.get("bridge") or "-", net["name"]) if net.get("bridge") != net["name"] else net["name"],
                 ", ".join(net.get("addresses") or []) or "no address",
                 "forward: %s; %s" % (net.get("forward_mode") or "none", net.get("source"))]
        for fwd in net.get("forwarders") or []:
            lines.append("DNS %s -> %s" % (fwd.get("domain") or "*", fwd.get("addr")))
        bad = sorted({f["check"] for f in net_findings if f["status"] != OK})
        if bad:
            lines.append("problems: " + ", ".join(bad))
        net_h = _box(body, COL_X[1], y, BOX_W[1], lines, status, "network",
                     title="; ".join(f["summary"] for f in net_findings if f["status"] != OK))
        net_mid = y + net_h // 2
        nat = [f for f in findings if f["check"] in ("masquerade", "outbound_path") and ("(%s)" % net["name"]) in f["subject"]]
        if net.get("forward_mode") in ("nat", "route", "open") or nat:
            _line(body, uplink_mid[0], uplink_mid[1], COL_X[1], net_mid, _worst(nat) or OK, "path",
                  label="NAT" if net.get("forward_mode") == "nat" or nat else net.get("forward_mode"))

        # Ports and guests: leases and static hosts do not say which port a guest sits on, so
        # each is a box of its own, joined to the network.
        guest_y = max(guest_y, y)
        for port in net.get("ports") or []:
            port_status = _worst(_about([f for f in findings if f["check"] in ("tap_drops", "bridge_mtu")], port))
            height = _box(body, COL_X[2], guest_y, BOX_W[2], [port], port_status, "port")
            _line(body, COL_X[1] + BOX_W[1], net_mid, COL_X[2], guest_y + height // 2, port_status, "link")
            guest_y += height + GAP // 2
        for guest in net.get("guests") or []:
            lines = [str(guest.get("name") or guest.get("hostname") or guest.get("ip") or guest.get("mac") or "guest"),
                     " ".join(str(v) for v in (guest.get("ip"), guest.get("mac")) if v)]
            guest_status = _worst(_about([f for f in findings if f["check"] in ("neighbours", "dhcp_duplicates")],
                                         *([guest.get("ip")] if guest.get("ip") else [])))
            height = _box(body, COL_X[2], guest_y, BOX_W[2], lines, guest_status, "guest")
            _line(body, COL_X[1] + BOX_W[1], net_mid, COL_X[2], guest_y + height // 2, guest_status, "link")
            if guest.get("ip"):
                guest_anchor[guest["ip"]] = (COL_X[2], guest_y + height // 2)
            guest_y += height + GAP // 2
        y = max(y + net_h + GAP, guest_y + GAP // 2)

    for fwd in result.get("port_forwards") or []:
        anchor = guest_anchor.get(fwd.get("destination"))
        fwd_findings = [f for f in findings if f["check"] in ("forward_path", "port_forward_duplicates")
                        and str(fwd.get("host_port")) in f["subject"]]
        label = "%s/%s -> %s:%s" % (fwd.get("protocol"), fwd.get("host_port"), fwd.get("destination"), fwd.get("destination_port"))
        if anchor is None:  # a forward to an address the picture has no guest for: drawn to the right edge
            anchor = (COL_X[2], y)
            _box(body, COL_X[2], y - LINE_H, BOX_W[2], [fwd.get("destination") or "?"], _worst(fwd_findings), "guest")
            y += LINE_H * 2 + GAP
        _line(body, uplink_mid[0], uplink_mid[1] + 8, anchor[0], anchor[1], _worst(fwd_findings) or OK, "forward",
              label=label, dashed=True)

    width = COL_X[2] + BOX_W[2] + GAP
    height = max(y, uplink_y + uplink_h + GAP)
    svg.set("width", str(width))
    svg.set("height", str(height))
    svg.set("viewBox", "0 0 %d %d" % (width, height))
    return ET.tostring(svg, encoding="unicode")
