# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""diagnose: gather the host into facts, run every check (pure functions) over them, report.

Nothing here changes the host: the runner is only used for reads, so check mode and a normal
run are the same run.
"""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose import gather
from ansible_collections.hypervisor.network.plugins.module_utils import _validate as validate
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_dns import (
    check_dhcp_duplicates,
    check_dnsmasq_listening,
    check_edns_size,
    check_nameservers,
    check_port53,
)
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_host import (
    LOG_PATTERNS,
    check_bridges,
    check_firewalld,
    check_forwarding,
    check_libvirt,
    check_libvirtd_log,
    check_neighbours,
    check_tap_drops,
)
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_firewall import (
    check_input_path,
    check_outbound_path,
)
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_nat import (
    check_forward_duplicates,
    check_forward_path,
    check_masquerade,
)
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.model import sort_findings, summary
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

# check id -> function(facts, params); the order is the order of the report before sorting.
CHECKS = {
    "libvirt_connection": lambda facts, p: check_libvirt(facts),
    "bridge": lambda facts, p: check_bridges(facts),
    "ip_forward": lambda facts, p: check_forwarding(facts),
    "masquerade": lambda facts, p: check_masquerade(facts),
    "forward_path": lambda facts, p: check_forward_path(facts),
    "outbound_path": lambda facts, p: check_outbound_path(facts),
    "input_path": lambda facts, p: check_input_path(facts),
    "port_forward_duplicates": lambda facts, p: check_forward_duplicates(facts),
    "dnsmasq_listening": lambda facts, p: check_dnsmasq_listening(facts),
    "port53": lambda facts, p: check_port53(facts),
    "nameservers": lambda facts, p: check_nameservers(facts),
    "edns_size": lambda facts, p: check_edns_size(facts),
    "tap_drops": lambda facts, p: check_tap_drops(facts, p["drop_threshold"]),
    "libvirtd_log": lambda facts, p: check_libvirtd_log(facts),
    "dhcp_duplicates": lambda facts, p: check_dhcp_duplicates(facts),
    "firewalld_zone": lambda facts, p: check_firewalld(facts),
    "neighbours": lambda facts, p: check_neighbours(facts),
}
# The names findings carry, per check above: one vocabulary for results, docs and the checks
# option. A check whose findings carry other names than its own is a group, and its name selects
# them all ("bridge" is bridge_exists, bridge_up, bridge_ports and bridge_mtu).
FINDINGS = dict((name, (name,)) for name in CHECKS)
FINDINGS["bridge"] = ("bridge_exists", "bridge_up", "bridge_ports", "bridge_mtu")
CHECK_NAMES = sorted(set(CHECKS) | {name for names in FINDINGS.values() for name in names})


def selected_findings(checks):
    """The finding names that ``checks`` (finding names or group names) asks for; None: all."""
    if not checks:
        return None
    wanted = set()
    for name in checks:
        wanted.update(FINDINGS.get(name, (name,)))
    return wanted


ARGUMENT_SPEC = dict(
    uri=dict(type="str", default="qemu:///system"),
    libvirt=dict(type="bool", default=True),
    networks=dict(type="list", elements="str"),
    bridges=dict(type="list", elements="str"),
    checks=dict(type="list", elements="str", choices=CHECK_NAMES),
    resolv_conf=dict(type="path", default="/etc/resolv.conf"),
    probe_dns=dict(type="bool", default=True),
    public_test_name=dict(type="str", default="example.com"),
    large_answer_name=dict(type="str"),
    dns_domains=dict(type="list", elements="str", default=[]),
    probe_timeout=dict(type="float", default=2.0),
    probe_budget=dict(type="float", default=20.0),
    drop_threshold=dict(type="int", default=0),
    counters_baseline=dict(type="dict"),
    log_files=dict(type="list", elements="path", default=["/var/log/libvirt/libvirtd.log"]),
    log_max_age_hours=dict(type="int", default=24),
)


def validate_params(params):
    for index, name in enumerate(params.get("bridges") or []):
        validate.interface_name("bridges[%d]" % index, name)
    validate.dns_name("public_test_name", params["public_test_name"])
    if params.get("large_answer_name"):
        validate.dns_name("large_answer_name", params["large_answer_name"])
    for index, name in enumerate(params["dns_domains"]):
        validate.dns_name("dns_domains[%d]" % index, name)
    if not 0 < params["probe_timeout"] <= 30:
        raise ValidationError("probe_timeout", params["probe_timeout"], "seconds per DNS query, more than 0 and at most 30")
    if not 0 <= params["probe_budget"] <= 600:
        raise ValidationError("probe_budget", params["probe_budget"], "total seconds of DNS probing, 0 to 600")


def select_networks(libvirt_nets, host_bridges, addrs, params):
    """libvirt networks first; then every other bridge of the host, as a network of its own."""
    wanted_nets, wanted_bridges = params.get("networks"), params.get("bridges")
    chosen = [n for n in libvirt_nets if (not wanted_nets or n["name"] in wanted_nets)
              and (not wanted_bridges or wanted_nets or n["bridge"] in wanted_bridges)]
    covered = {n["bridge"] for n in libvirt_nets}
    if not wanted_nets or wanted_bridges:
        for bridge in sorted(host_bridges):
            if bridge not in covered and (not wanted_bridges or bridge in wanted_bridges):
                chosen.append(gather.host_network(bridge, addrs))
    # A bridge asked for by name that is not there is the first thing to report.
    for bridge in wanted_bridges or ():
        if bridge not in covered and bridge not in host_bridges:
            chosen.append(gather.host_network(bridge, addrs))
    return chosen


def gather_facts(runner, params):
    if params["libvirt"]:
        from ansible_collections.hypervisor.network.plugins.module_utils._diagnose import libvirt as diagnose_libvirt
        libvirt_info, libvirt_nets = diagnose_libvirt.gather(params["uri"], params.get("networks"))
    else:
        libvirt_info, libvirt_nets = {"uri": params["uri"], "enabled": False}, []
    links = gather.links(runner)
    addrs = gather.addresses(runner)
    networks = select_networks(libvirt_nets, [n for n, link in links.items() if link["kind"] == "bridge"], addrs, params)
    default_dev = gather.default_route_dev(runner)
    for net in networks:
        # The host's own way out: its guests sit on the LAN, with the LAN's router and DNS.
        net["uplink"] = net["source"] == "host" and net["bridge"] == default_dev
    bridges = {n["bridge"] for n in networks if n.get("bridge")}
    ports = [name for name, link in links.items() if link.get("master") in bridges]
    chains, nat_rules, port_forwards, netfilter_errors = gather.netfilter(runner)
    resolv = gather.resolv(params["resolv_conf"])
    domains = []
    for domain in [n.get("domain") for n in networks] + resolv.get("search", []) + params["dns_domains"]:
        if domain and domain not in domains:
            domains.append(domain)
    names = [params["public_test_name"]] + domains
    probes = gather.dns_probes(resolv["nameservers"], names, params["probe_timeout"], params["probe_budget"]) \
        if params["probe_dns"] else []
    patterns = [p for p, _m in LOG_PATTERNS]
    large = gather.large_probes(resolv["nameservers"], params["large_answer_name"], params["probe_timeout"],
                                params["probe_budget"]) if params["probe_dns"] and params.get("large_answer_name") else []
    log_hits, log_read = gather.log_lines(params["log_files"], patterns, params["log_max_age_hours"])
    journal_hits, journal_read = gather.journal_lines(runner, patterns, params["log_max_age_hours"])
    return {
        "libvirt": libvirt_info,
        "networks": networks,
        "links": links,
        "addresses": addrs,
        "default_route_dev": default_dev,
        "sysctl": gather.sysctls(),
        "listeners": gather.listeners(),
        "counters": gather.counters(ports),
        "baseline": params.get("counters_baseline") or {},
        "chains": {" ".join(key): body for key, body in chains.items()},
        "nat_rules": nat_rules,
        "port_forwards": port_forwards,
        "netfilter_errors": netfilter_errors,
        "resolv": resolv,
        "dns_names": {"public": params["public_test_name"], "domains": domains, "large": params.get("large_answer_name")},
        "large_probes": large,
        "dns_probes": probes,
        "log_lines": log_hits + journal_hits,
        "log_files_read": log_read,
        "journal_read": journal_read,
        "neighbours": gather.neighbours(runner, sorted(bridges)),
        "firewalld": gather.firewalld(runner, sorted(bridges)),
    }


def run_checks(facts, params):
    wanted = selected_findings(params.get("checks"))
    findings = []
    for check_id, function in CHECKS.items():
        if wanted is None or wanted & set(FINDINGS[check_id]):
            findings.extend(f for f in function(facts, params) if wanted is None or f["check"] in wanted)
    return sort_findings(findings)


def inventory(facts):
    """Per network: its bridge, addresses and guests (ports, static hosts, leases), for reports."""
    out = []
    for net in facts["networks"]:
        ports = sorted(n for n, link in facts["links"].items() if net.get("bridge") and link.get("master") == net["bridge"])
        out.append({
            "name": net["name"], "source": net["source"], "bridge": net.get("bridge"), "active": net.get("active"),
            "forward_mode": net.get("forward_mode"),
            "addresses": ["%s/%s" % (ip["address"], ip["prefix"]) for ip in net.get("ips", [])],
            "ports": ports,
            "guests": [h for ip in net.get("ips", []) for h in ip.get("dhcp_hosts", [])] + list(net.get("leases", [])),
            "domain": net.get("domain"),
            "forwarders": list(net.get("forwarders") or []),
        })
    return out


def run(module):
    params = module.params
    validate_params(params)
    runner = Runner(module)
    facts = gather_facts(runner, params)
    findings = run_checks(facts, params)
    return {
        "changed": False,
        "findings": findings,
        "summary": summary(findings),
        "networks": inventory(facts),
        "uplink": facts["default_route_dev"],
        "counters": facts["counters"],
        "dns_probes": facts["dns_probes"],
        "port_forwards": facts["port_forwards"],
    }
