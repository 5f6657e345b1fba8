# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_probe: what a guest sees of its network. DNS success rate and latency through the
gateway, gateway and upstream reachability, as measurements and as findings like diagnose's.

DNS is probed in the styles real clients ask in (dns.STYLES), because a forwarder can answer
them differently: libvirt's dnsmasq behind a REFUSED-first upstream fails dig but not glibc. Two
things would hide that, and the query plan avoids both: a style that dnsmasq retries on the next
upstream puts the answer in its cache, which then answers every style, so the styles that carry
EDNS options go first; and every query after the first of a name asks for a fresh name under it
(``uncached``), which no cache holds, so each query really travels to the upstream.
"""

from __future__ import annotations

import binascii
import os
import socket
import struct
import time

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose import dns
from ansible_collections.hypervisor.network.plugins.module_utils import _validate as validate
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.model import FAIL, OK, WARN, finding, summary
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

ARGUMENT_SPEC = dict(
    server=dict(type="str"),
    names=dict(type="list", elements="str", default=["example.com"]),
    count=dict(type="int", default=20),
    timeout=dict(type="float", default=1.0),
    interval=dict(type="float", default=0.0),
    styles=dict(type="list", elements="str", choices=sorted(dns.STYLES)),
    uncached=dict(type="bool", default=True),
    edns=dict(type="bool"),
    min_success_rate=dict(type="float", default=0.95),
    upstream=dict(type="list", elements="str", default=[]),
    resolv_conf=dict(type="path", default="/etc/resolv.conf"),
    resolved_resolv_conf=dict(type="path", default="/run/systemd/resolve/resolv.conf"),
)
RESOLVED_STUBS = ("127.0.0.53", "127.0.0.54")


def default_gateway(text):
    """The IPv4 default gateway from /proc/net/route (exact, no parsing of ip's output)."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == "00000000" and int(fields[3], 16) & 0x2:
            return socket.inet_ntoa(struct.pack("=I", int(fields[2], 16)))
    return None


DEFAULT_STYLES = [dns.COOKIE, dns.PLAIN]
# Styles whose queries dnsmasq answers from a retry on the next upstream, warming its cache, go last.
STYLE_ORDER = {dns.COOKIE: 0, dns.EDNS: 1, dns.PLAIN: 2}
UNCACHED_PREFIX = "hnprobe-"


def choose_styles(styles, edns):
    """The styles to probe, in the order that keeps one from masking another. ``edns`` is the old
    single-style switch: true is the ``edns`` style, false ``plain``; ``styles`` wins when both are given."""
    if styles:
        chosen = list(dict.fromkeys(styles))
    elif edns is not None:
        chosen = [dns.EDNS if edns else dns.PLAIN]
    else:
        chosen = list(DEFAULT_STYLES)
    return sorted(chosen, key=STYLE_ORDER.get)


def plan_queries(names, styles, count, uncached, token=None):
    """[(style, name)]: ``count`` queries per style, the names in turn. The first query of each
    name is the name itself (what the guest's applications ask); with ``uncached`` the later ones
    ask for a fresh label under it (NXDOMAIN from a server that serves the zone, REFUSED from one
    that refuses it), so that no cache on the way answers them in place of the upstream."""
    token = token or (lambda: binascii.hexlify(os.urandom(5)).decode("ascii"))
    plan = []
    for style in styles:
        for index in range(count):
            name = names[index % len(names)]
            if uncached and index >= len(names):
                name = "%s%s.%s" % (UNCACHED_PREFIX, token(), name.rstrip("."))
            plan.append((style, name))
    return plan


def dns_stats(results):
    answered = [r for r in results if r["rcode"] in dns.ANSWERED]
    rcodes = {}
    for item in results:
        rcodes[item["rcode"]] = rcodes.get(item["rcode"], 0) + 1
    times = [r["ms"] for r in answered if r["ms"] is not None]
    latency = {"p50": dns.percentile(times, 50), "p90": dns.percentile(times, 90), "p99": dns.percentile(times, 99),
               "max": max(times)} if times else None
    return {"queries": len(results), "answered": len(answered),
            "success_rate": round(float(len(answered)) / len(results), 4) if results else 0.0,
            "rcodes": rcodes, "latency_ms": latency}


def ping(runner, address):
    # Small guests often have only busybox; both understand this subset of options.
    if runner.has("ping"):
        argv = ["ping", "-c", "2", "-W", "1", address]
    elif runner.has("busybox"):
        argv = ["busybox", "ping", "-c", "2", "-W", "1", address]
    else:
        return {"address": address, "reachable": None, "error": "neither ping nor busybox is installed"}
    rc, out, _err = runner.read(argv, check_rc=False)
    rtt = None
    for line in out.splitlines():
        if "min/avg/max" in line and "=" in line:
            rtt = float(line.split("=")[1].split("/")[1])
    return {"address": address, "reachable": rc == 0, "rtt_ms": rtt}


def _read(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read(), None
    except OSError as exc:
        return None, str(exc)


def read_resolver(resolv_conf, resolved_resolv_conf):
    """The guest's resolver as glibc sees it: resolv.conf's nameservers, and when the first is
    systemd-resolved's stub, resolved's own upstreams (the file resolved writes them to)."""
    text, error = _read(resolv_conf)
    if text is None:
        return {"path": resolv_conf, "error": error, "nameservers": [], "search": [], "via": None, "upstreams": []}
    parsed = dns.parse_resolv_conf(text)
    resolver = {"path": resolv_conf, "error": None, "nameservers": parsed["nameservers"], "search": parsed["search"],
                "via": "resolv.conf", "upstreams": list(parsed["nameservers"])}
    if parsed["nameservers"] and parsed["nameservers"][0] in RESOLVED_STUBS:
        upstream_text, upstream_error = _read(resolved_resolv_conf)
        resolver["via"] = "systemd-resolved"
        resolver["upstreams"] = dns.parse_resolv_conf(upstream_text)["nameservers"] if upstream_text is not None else []
        if upstream_text is None:
            resolver["error"] = "systemd-resolved's upstreams unknown: %s" % upstream_error
    return resolver


def evaluate_resolver(resolver, gateway):
    """Does the guest's DNS go to the gateway's dnsmasq? If it goes elsewhere, the network's
    forwarders, its domain and the names of the other guests do not apply to this guest."""
    path = resolver["path"]
    shown = "%s: nameservers %s" % (path, ", ".join(resolver["nameservers"]) or "none")
    evidence = [shown]
    if resolver["via"] == "systemd-resolved":
        evidence.append("systemd-resolved's upstreams: %s" % (", ".join(resolver["upstreams"]) or "none"))
    if resolver["via"] is None:
        return finding("guest_resolver", WARN, path, "cannot read the guest's resolver configuration",
                       evidence=[resolver["error"]])
    upstreams = resolver["upstreams"]
    fix = ("point the guest's resolver at the gateway %s (hypervisor.network.guest_dns role: resolv.conf, "
           "systemd-resolved or NetworkManager, whichever the guest uses)" % (gateway or "address"))
    if not upstreams:
        return finding("guest_resolver", FAIL, path, "the guest has no nameserver%s: it resolves nothing" % (
            " behind systemd-resolved" if resolver["via"] == "systemd-resolved" else ""),
            evidence=evidence + ([resolver["error"]] if resolver.get("error") else []), fix=fix)
    if gateway is None:
        return finding("guest_resolver", WARN, path, "no default gateway to compare the nameservers with", evidence=evidence)
    through = " through systemd-resolved" if resolver["via"] == "systemd-resolved" else ""
    if upstreams[0] == gateway:
        return finding("guest_resolver", OK, path, "DNS goes to the gateway's dnsmasq (%s)%s" % (gateway, through),
                       evidence=evidence)
    if gateway in upstreams:
        words = "DNS goes first to %s%s, the gateway %s only after it" % (upstreams[0], through, gateway)
    else:
        words = "DNS goes to %s%s, not to the gateway's dnsmasq %s" % (", ".join(upstreams), through, gateway)
    return finding("guest_resolver", WARN, path,
                   words + ": the network's DNS forwarders, its domain and the other guests' names do not apply",
                   evidence=evidence, fix=fix)


def style_stats(results, styles):
    """dns_stats per style, each with the clients that ask that way."""
    out = {}
    for style in styles:
        stats = dns_stats([r for r in results if r.get("style") == style])
        stats["clients"] = dns.STYLES[style]
        out[style] = stats
    return out


def _dns_hint(style, stats, all_styles):
    refused = stats["rcodes"].get("REFUSED", 0)
    if not refused:
        return "timeouts: look at tap drops (diagnose tap_drops) and at dnsmasq on the host"
    others_fine = [s for s, st in all_styles.items() if s != style and st["rcodes"].get("REFUSED", 0) == 0]
    words = ("REFUSED comes from the host's upstream: its first nameserver refuses these names and dnsmasq "
             "(strict-order) passes that on")
    if style != dns.PLAIN and others_fine:
        words += (" to clients whose queries carry EDNS options, while it retries the %s style on the next "
                  "server" % ", ".join(sorted(others_fine)))
    return words + "; run hypervisor.network.diagnose on the host (nameservers check) for the forwarders that fix it"


def evaluate(gateway, server, stats, reach_gateway, reach_upstream, min_rate, styles=None):
    """Findings from the measurements; with ``styles`` (per-style stats) one guest_dns finding per
    style, so that the style that fails is named; else one for ``stats``."""
    findings = []
    if gateway is None:
        findings.append(finding("guest_route", FAIL, "default route", "the guest has no IPv4 default route",
                                fix="DHCP did not give a router, or the guest's network config lacks a gateway"))
    elif reach_gateway.get("reachable") is False:
        findings.append(finding("guest_gateway", FAIL, gateway, "the gateway does not answer ping",
                                fix="check the guest's link (bridge port up, same subnet) and the host's bridge"))
    else:
        findings.append(finding("guest_gateway", OK, gateway, "the gateway answers", evidence=["rtt %s ms" % reach_gateway.get("rtt_ms")]))
    if stats is not None:
        per_style = sorted((styles or {None: stats}).items(), key=lambda item: STYLE_ORDER.get(item[0], 0))
        for style, style_stats_ in per_style:
            subject = "%s (%s queries)" % (server, style) if style else server
            label = " for %s queries (%s)" % (style, dns.STYLES[style]) if style else ""
            evidence = ["%d/%d answered, rcodes %s, latency %s" % (
                style_stats_["answered"], style_stats_["queries"], style_stats_["rcodes"], style_stats_["latency_ms"])]
            if style_stats_["success_rate"] >= min_rate:
                findings.append(finding("guest_dns", OK, subject, "DNS success rate %.0f%%%s" % (
                    style_stats_["success_rate"] * 100, label), evidence=evidence))
            else:
                findings.append(finding("guest_dns", FAIL, subject, "DNS success rate %.0f%% is below %.0f%%%s" % (
                    style_stats_["success_rate"] * 100, min_rate * 100, label), evidence=evidence,
                    fix=_dns_hint(style, style_stats_, styles or {})))
    for item in reach_upstream:
        status = OK if item.get("reachable") else FAIL
        findings.append(finding("guest_upstream", status, item["address"],
                                "reachable" if status == OK else "not reachable through the gateway",
                                evidence=["rtt %s ms" % item.get("rtt_ms")],
                                fix=None if status == OK else "on the host: diagnose ip_forward, masquerade and forward_path"))
    return findings


def run(module):
    params = module.params
    for index, name in enumerate(params["names"]):
        validate.dns_name("names[%d]" % index, name)
    if not 1 <= params["count"] <= 10000:
        raise ValidationError("count", params["count"], "1 to 10000 queries")
    for index, addr in enumerate(params["upstream"]):
        validate.address("upstream[%d]" % index, addr)
    runner = Runner(module)
    try:
        with open("/proc/net/route", "r", encoding="ascii") as handle:
            gateway = default_gateway(handle.read())
    except OSError:
        gateway = None
    server = params["server"] or gateway
    if server:
        validate.address("server", server)
    styles = choose_styles(params.get("styles"), params.get("edns"))
    results = []
    if server:
        for style, name in plan_queries(params["names"], styles, params["count"], params["uncached"]):
            results.append(dns.query(server, name, timeout=params["timeout"], style=style))
            if params["interval"]:
                time.sleep(params["interval"])
    stats, per_style = None, None
    if server:
        stats = dns_stats(results)
        per_style = style_stats(results, styles)
        stats["styles"] = per_style
        stats["order"] = styles
    reach_gateway = ping(runner, gateway) if gateway else {}
    reach_upstream = [ping(runner, addr) for addr in params["upstream"]]
    resolver = read_resolver(params["resolv_conf"], params["resolved_resolv_conf"])
    findings = evaluate(gateway, server, stats, reach_gateway, reach_upstream, params["min_success_rate"], per_style)
    findings.append(evaluate_resolver(resolver, gateway))
    findings.sort(key=lambda f: ({FAIL: 0, WARN: 1, OK: 2}[f["status"]], f["check"]))
    return {"changed": False, "gateway": gateway, "server": server, "dns": stats, "resolver": resolver,
            "gateway_reachable": reach_gateway, "upstream": reach_upstream,
            "findings": findings, "summary": summary(findings)}
