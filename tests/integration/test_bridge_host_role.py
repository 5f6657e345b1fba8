# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bridge_host's dnsmasq input checks, through the real role run by ansible-playbook over the netns
connection, one namespace per case: each bad value fails naming the field and the value, and
nothing on the host changes (no bridge, no forwarding, no file, no dnsmasq)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from netlab import COLLECTIONS, REPO

BRIDGES = [{"name": "br0", "addresses": ["10.30.0.1/24"], "stp": False, "forward_delay": 0}]
GOOD_HOST = {"mac": "52:54:00:00:00:0a", "ip": "10.30.0.10", "name": "web"}
GOOD_RANGE = {"start": "10.30.0.100", "end": "10.30.0.199"}


def instance(**fields):
    return dict({"bridge": "br0", "dhcp_ranges": [GOOD_RANGE]}, **fields)


# (case id, instance, the field named in the error, the value shown in the error)
BAD = [
    ("comma-in-host-name", instance(dhcp_hosts=[dict(GOOD_HOST, name="web,infinite")]),
     "bridge_host_dnsmasq[0].dhcp_hosts[0].name", "'web,infinite'"),
    ("slash-in-server-domain", instance(servers=[{"domain": "corp/evil.com", "addr": "198.51.100.53"}]),
     "bridge_host_dnsmasq[0].servers[0].domain", "'corp/evil.com'"),
    ("slash-in-server-addr", instance(servers=[{"domain": "corp", "addr": "198.51.100.53/evil"}]),
     "bridge_host_dnsmasq[0].servers[0].addr", "'198.51.100.53/evil'"),
    ("space-in-domain", instance(domain="ex ample.lan"), "bridge_host_dnsmasq[0].domain", "'ex ample.lan'"),
    ("reversed-range", instance(dhcp_ranges=[{"start": "10.30.0.199", "end": "10.30.0.100"}]),
     "bridge_host_dnsmasq[0].dhcp_ranges[0].end", "'10.30.0.100'"),
    ("range-outside-subnet", instance(dhcp_ranges=[{"start": "10.31.0.100", "end": "10.31.0.199"}]),
     "bridge_host_dnsmasq[0].dhcp_ranges[0].start", "'10.31.0.100'"),
    ("range-holds-gateway", instance(dhcp_ranges=[{"start": "10.30.0.1", "end": "10.30.0.50"}]),
     "bridge_host_dnsmasq[0].dhcp_ranges[0].start", "'10.30.0.1'"),
    ("range-holds-broadcast", instance(dhcp_ranges=[{"start": "10.30.0.200", "end": "10.30.0.255"}]),
     "bridge_host_dnsmasq[0].dhcp_ranges[0].start", "'10.30.0.200'"),
    ("overlapping-ranges", instance(dhcp_ranges=[GOOD_RANGE, {"start": "10.30.0.150", "end": "10.30.0.250"}]),
     "bridge_host_dnsmasq[0].dhcp_ranges[1].start", "'10.30.0.150'"),
    ("duplicate-mac", instance(dhcp_hosts=[GOOD_HOST, dict(GOOD_HOST, ip="10.30.0.11", name="db")]),
     "bridge_host_dnsmasq[0].dhcp_hosts[1].mac", "'52:54:00:00:00:0a'"),
    ("duplicate-ip", instance(dhcp_hosts=[GOOD_HOST, dict(GOOD_HOST, mac="52:54:00:00:00:0b", name="db")]),
     "bridge_host_dnsmasq[0].dhcp_hosts[1].ip", "'10.30.0.10'"),
    ("duplicate-name", instance(dhcp_hosts=[GOOD_HOST, dict(GOOD_HOST, mac="52:54:00:00:00:0b", ip="10.30.0.11")]),
     "bridge_host_dnsmasq[0].dhcp_hosts[1].name", "'web'"),
    ("multicast-mac", instance(dhcp_hosts=[dict(GOOD_HOST, mac="01:00:5e:00:00:01")]),
     "bridge_host_dnsmasq[0].dhcp_hosts[0].mac", "'01:00:5e:00:00:01'"),
    ("host-outside-subnet", instance(dhcp_hosts=[dict(GOOD_HOST, ip="192.0.2.10")]),
     "bridge_host_dnsmasq[0].dhcp_hosts[0].ip", "'192.0.2.10'"),
    ("comma-in-lease-time", instance(dhcp_ranges=[dict(GOOD_RANGE, lease_time="1h,evil")]),
     "bridge_host_dnsmasq[0].dhcp_ranges[0].lease_time", "'1h,evil'"),
    ("comma-in-dns-host", instance(dns_hosts=[{"ip": "10.30.0.5", "hostnames": ["a,b"]}]),
     "bridge_host_dnsmasq[0].dns_hosts[0].hostnames[0]", "'a,b'"),
    ("router-outside-subnet", instance(router="192.0.2.1"), "bridge_host_dnsmasq[0].router", "'192.0.2.1'"),
    ("hash-in-option", instance(options=["log-queries#x"]), "bridge_host_dnsmasq[0].options[0]", "'log-queries#x'"),
    ("comma-in-bridge", instance(bridge="br0,lo"), "bridge_host_dnsmasq[0].bridge", "'br0,lo'"),
    ("unknown-subnet", {"bridge": "brx", "dhcp_ranges": [GOOD_RANGE]},
     "bridge_host_dnsmasq[0].dhcp_ranges[0]", "'10.30.0.100'"),
]

PLAY = [{"hosts": "all", "gather_facts": False, "roles": ["hypervisor.network.bridge_host"]}]


def host_vars(tmp, ns, dnsmasq):
    base = tmp / ns
    return {
        "ansible_connection": "hypervisor.network.netns", "ansible_netns_name": ns,
        "ansible_python_interpreter": sys.executable,
        "bridge_host_install_packages": False, "bridge_host_service_manager": "none",
        "bridge_host_bridge_persist": "none", "bridge_host_sysctl_persist": False,
        "bridge_host_netfilter_persist": False, "bridge_host_dnsmasq_user": "root",
        "bridge_host_dnsmasq_conf_dir": str(base / "etc"), "bridge_host_dnsmasq_run_dir": str(base / "run"),
        "bridge_host_dnsmasq_lease_dir": str(base / "lib"),
        "bridge_host_bridges": BRIDGES, "bridge_host_dnsmasq": dnsmasq,
    }


def run_role(tmp, hosts):
    (tmp / "inv.json").write_text(json.dumps({"all": {"hosts": hosts}}))
    (tmp / "play.yml").write_text(yaml.safe_dump(PLAY))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / "cp"), ANSIBLE_FORKS="4",
               PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "inv.json"),
                           str(tmp / "play.yml")], capture_output=True, text=True, env=env, timeout=600,
                          cwd=str(REPO), check=False)


def stop_dnsmasq(tmp, names):
    """If a case were not refused, the role would have started dnsmasq: stop it by its pid file."""
    for ns in names:
        for pid_file in (tmp / ns / "run").glob("dnsmasq-*.pid"):
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass


def host_is_untouched(lab, ns):
    links = json.loads(lab.run(ns, ["ip", "-j", "link", "show"]).stdout)
    assert [link["ifname"] for link in links] == ["lo"], "%s: the role created links" % ns
    assert lab.run(ns, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0", "%s: forwarding changed" % ns
    assert not (lab.tmp / ns / "etc").exists(), "%s: the role wrote dnsmasq files" % ns
    assert lab.run(ns, ["nft", "list", "tables"]).stdout.strip() == "", "%s: the role added rules" % ns


def test_each_bad_dnsmasq_field_fails_naming_it_and_changes_nothing(lab):
    names = {case: lab.ns(case[:10] + str(index)) for index, (case, _i, _f, _v) in enumerate(BAD)}
    hosts = {case: host_vars(lab.tmp, names[case], [item]) for case, item, _f, _v in BAD}
    try:
        proc = run_role(lab.tmp, hosts)
    finally:
        stop_dnsmasq(lab.tmp, names.values())
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    failed = {}
    for line in proc.stdout.splitlines():
        if line.startswith("fatal: ["):
            failed[line[len("fatal: ["):].split("]", 1)[0]] = line
    for case, _item, field, value in BAD:
        assert case in failed, "%s was not refused:\n%s" % (case, out)
        assert field in failed[case] and value in failed[case], "%s: %s" % (case, failed[case])
        assert "Check every field of the dnsmasq instances" in out
        host_is_untouched(lab, names[case])
    assert "ok=" in out and "changed=0" in out.split("PLAY RECAP", 1)[1]


@pytest.mark.parametrize("bad", ["52:54:00:00:00:0a\n"])
def test_a_newline_is_still_refused_by_the_first_check(lab, bad):
    ns = lab.ns("nl")
    proc = run_role(lab.tmp, {"nl": host_vars(lab.tmp, ns, [instance(dhcp_hosts=[dict(GOOD_HOST, mac=bad)])])})
    assert proc.returncode != 0
    assert "no value may contain a newline" in proc.stdout
    host_is_untouched(lab, ns)


def test_valid_instance_is_written_checked_by_dnsmasq_and_served(lab):
    """The good case next to the bad ones: the file passes `dnsmasq --test` (the template's
    validate) and dnsmasq runs on the bridge."""
    ns = lab.ns("good")
    item = instance(domain="lab.internal", dhcp_hosts=[GOOD_HOST], router="10.30.0.1",
                    servers=[{"domain": "corp.example", "addr": "198.51.100.53"}, {"addr": "203.0.113.53", "port": 53}],
                    dns_hosts=[{"ip": "10.30.0.5", "hostnames": ["files", "files.lab.internal"]}],
                    options=["edns-packet-max=1232"])
    try:
        proc = run_role(lab.tmp, {"good": host_vars(lab.tmp, ns, [item])})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        conf = (lab.tmp / ns / "etc" / "dnsmasq-br0.conf").read_text()
        assert "dhcp-host=52:54:00:00:00:0a,10.30.0.10,web\n" in conf
        assert "server=/corp.example/198.51.100.53\n" in conf
        pid = int((lab.tmp / ns / "run" / "dnsmasq-br0.pid").read_text())
        assert Path("/proc/%d/comm" % pid).read_text().strip() == "dnsmasq"
        # an option of the right form that dnsmasq does not know passes the filter; dnsmasq --test
        # (the template's validate) stops it, and the working file and dnsmasq stay as they were
        broken = dict(item, options=["edns-packet-max=1232", "no-such-option-here"])
        proc = run_role(lab.tmp, {"good": host_vars(lab.tmp, ns, [broken])})
        assert proc.returncode != 0
        assert "failed to validate" in proc.stdout
        assert (lab.tmp / ns / "etc" / "dnsmasq-br0.conf").read_text() == conf
        assert Path("/proc/%d/comm" % pid).read_text().strip() == "dnsmasq"
    finally:
        stop_dnsmasq(lab.tmp, [ns])
