# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_probe: what a guest sees of its network. DNS success rate and latency through the
gateway, gateway and upstream reachability, as measurements and as findings like diagnose's."""

from __future__ import annotations

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
    edns=dict(type="bool", default=True),
    min_success_rate=dict(type="float", default=0.95),
    upstream=dict(type="list", elements="str", default=[]),
)


def default_gateway(text):
    """The IPv4 default gateway from /proc/net/route (exact, no parsing of ip's output)."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == "00000000" and int(fields[3], 16) & 0x2:
            return socket.inet_ntoa(struct.pack("=I", int(fields[2], 16)))
    return None


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


def evaluate(gateway, server, stats, reach_gateway, reach_upstream, min_rate):
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
        evidence = ["%d/%d answered, rcodes %s, latency %s" % (stats["answered"], stats["queries"], stats["rcodes"], stats["latency_ms"])]
        if stats["success_rate"] >= min_rate:
            findings.append(finding("guest_dns", OK, server, "DNS success rate %.0f%%" % (stats["success_rate"] * 100), evidence=evidence))
        else:
            refused = stats["rcodes"].get("REFUSED", 0)
            hint = ("REFUSED comes from the host's upstream: run hypervisor.network.diagnose on the host (nameservers check)"
                    if refused else "timeouts: look at tap drops (diagnose tap_drops) and at dnsmasq on the host")
            findings.append(finding("guest_dns", FAIL, server, "DNS success rate %.0f%% is below %.0f%%" % (
                stats["success_rate"] * 100, min_rate * 100), evidence=evidence, fix=hint))
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
    results = []
    if server:
        for index in range(params["count"]):
            results.append(dns.query(server, params["names"][index % len(params["names"])], timeout=params["timeout"],
                                     edns=params["edns"]))
            if params["interval"]:
                time.sleep(params["interval"])
    stats = dns_stats(results) if server else None
    reach_gateway = ping(runner, gateway) if gateway else {}
    reach_upstream = [ping(runner, addr) for addr in params["upstream"]]
    findings = evaluate(gateway, server, stats, reach_gateway, reach_upstream, params["min_success_rate"])
    findings.sort(key=lambda f: ({FAIL: 0, WARN: 1, OK: 2}[f["status"]], f["check"]))
    return {"changed": False, "gateway": gateway, "server": server, "dns": stats,
            "gateway_reachable": reach_gateway, "upstream": reach_upstream,
            "findings": findings, "summary": summary(findings)}
