"""playbooks/diagnose.yml over the netns connection: a hypervisor namespace and a guest namespace,
the table on stdout, and the JSON and HTML reports on the controller."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from xml.etree import ElementTree

from netfilter_topology import build
from playbook_runner import BIN, REPO, ansible_env


def netns_host(ns):
    return {"ansible_connection": "hypervisor.network.netns", "ansible_netns_name": ns,
            "ansible_python_interpreter": sys.executable}


def test_playbook_prints_problems_first_and_writes_reports(lab):
    topo = build(lab)
    lab.sysctl(topo.hv, "net.ipv4.ip_forward", 0)
    inventory = {"all": {"children": {
        "kvm_hosts": {"hosts": {"hv1": netns_host(topo.hv)}},
        "sandbox_guests": {"hosts": {"g1": netns_host(topo.g1)}},
    }}}
    report = lab.tmp / "report"
    extra = {
        "diagnose_report_dir": str(report),
        "diagnose_options": {"libvirt": False, "probe_dns": False, "log_files": []},
        "diagnose_probe_options": {"count": 3, "timeout": 0.3, "names": ["example.com"]},
    }
    (lab.tmp / "inventory.json").write_text(json.dumps(inventory))
    (lab.tmp / "extra.json").write_text(json.dumps(extra))
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(lab.tmp / "inventory.json"), "-e", "@%s" % (lab.tmp / "extra.json"),
                           str(REPO / "playbooks" / "diagnose.yml")], capture_output=True, text=True, env=ansible_env(),
                          timeout=300, cwd=str(REPO), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    print(out)  # the table, for -s
    hv1, g1 = "hv1", "g1"
    assert "%s: 1 fail," % hv1 in out
    table = out[out.index("%s: 1 fail," % hv1):]
    assert table.index("FAIL ip_forward") < table.index("OK ")
    assert "run: hypervisor.network.ip_forward {\\\"ipv4\\\": true}" in out or 'run: hypervisor.network.ip_forward {"ipv4": true}' in out
    assert "%s: gateway 10.0.0.1 reachable" % g1 in out

    data = json.loads((report / "diagnose.json").read_text())
    assert set(data["hosts"]) == {hv1} and set(data["guests"]) == {g1}
    assert data["hosts"][hv1]["summary"]["fail"] == 1
    # count is per query style; two styles by default (cookie, plain)
    assert data["guests"][g1]["dns"]["queries"] == 6
    assert {style: stats["queries"] for style, stats in data["guests"][g1]["dns"]["styles"].items()} == {"cookie": 3, "plain": 3}
    html = (report / "diagnose.html").read_text()
    assert "<h2 id=\"host-%s\">%s</h2>" % (hv1, hv1) in html and "ip_forward" in html and "br0" in html
    # the bridge's row names the checks that failed for it, the host-wide ip_forward included
    assert re.search(r"<td>vg1, vg2</td>.*?<td>[^<]*ip_forward[^<]*</td>\s*</tr>", html, re.S)
    assert "vg1, vg2" in html and "<script" not in html and "http" not in html.split("</title>")[1]


def test_playbook_report_renders_a_lease_only_guest_and_the_refused_first_problem(lab):
    """The shipped playbook on a libvirt host whose only guest is known from its DHCP lease, the
    host's first nameserver refusing public names: the HTML report is written, with the lease."""
    from libvirt_lab import PUBLIC_NAME, REFUSING_RESOLV_CONF, attach_guest_ns, dhcp_lease, libvirt_host

    network = dict(name="diag", bridge=dict(name="virbr82"),
                   ips=[dict(address="10.79.1.1", prefix=24, dhcp_ranges=[dict(start="10.79.1.100", end="10.79.1.150")])])
    with libvirt_host(lab, upstream_ttl=300, resolv_conf=REFUSING_RESOLV_CONF) as (host, _upstream):
        host.module("libvirt_network", network)
        guest = attach_guest_ns(lab, host, "virbr82", "g1", "gport1")
        lease = dhcp_lease(lab, guest)
        hv = dict(netns_host(host.ns), ansible_netns_mount_namespace="/proc/%d/ns/mnt" % host.libvirtd_pid)
        inventory = {"all": {"children": {
            "kvm_hosts": {"hosts": {"hv1": hv}},
            "sandbox_guests": {"hosts": {"g1": netns_host(guest)}},
        }}}
        report = lab.tmp / "report"
        extra = {
            "diagnose_report_dir": str(report),
            "diagnose_options": {"public_test_name": PUBLIC_NAME, "dns_domains": ["corp.example"], "probe_timeout": 1.0,
                                 "log_files": []},
            "diagnose_probe_options": {"count": 4, "timeout": 1.0, "names": [PUBLIC_NAME]},
        }
        (lab.tmp / "inventory.json").write_text(json.dumps(inventory))
        (lab.tmp / "extra.json").write_text(json.dumps(extra))
        control = lab.tmp / "cp"
        control.mkdir()
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(lab.tmp / "inventory.json"), "-e",
                               "@%s" % (lab.tmp / "extra.json"), str(REPO / "playbooks" / "diagnose.yml")],
                              capture_output=True, text=True, env=ansible_env(ANSIBLE_SSH_CONTROL_PATH_DIR=str(control)),
                              timeout=300, cwd=str(REPO), check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        data = json.loads((report / "diagnose.json").read_text())
        (net,) = [n for n in data["hosts"]["hv1"]["networks"] if n["name"] == "diag"]
        assert [g["ip"] for g in net["guests"]] == [lease["ip"]] and "name" not in net["guests"][0]
        assert "FAIL nameservers" in proc.stdout
        # libvirt's own rules let the guests' DNS, DHCP and outbound traffic through: no false alarm
        paths = [f for f in data["hosts"]["hv1"]["findings"] if f["check"] in ("input_path", "outbound_path")]
        assert len(paths) == 5 and {f["status"] for f in paths} == {"ok"}, paths
        assert data["guests"]["g1"]["dns"]["styles"]["cookie"]["rcodes"].get("REFUSED", 0) >= 3, data["guests"]["g1"]["dns"]
        html = (report / "diagnose.html").read_text()
        assert lease["ip"] in html and "nameservers" in html and "<script" not in html
        assert "http" not in html.split("</title>")[1]  # no external resource, the picture included
        # the picture: valid SVG, the uplink, the network, its port and its lease-only guest
        (svg,) = re.findall(r"<svg .*?</svg>", html, re.S)
        root = ElementTree.fromstring(svg)
        # inline in HTML, without the namespace declaration an .svg file carries
        kinds = [(g.get("class") or "").split() for g in root.iter("g") if g.get("class")]
        count = {kind: sum(1 for k in kinds if k[0] == kind) for kind in ("uplink", "network", "port", "guest", "link", "path")}
        assert count == {"uplink": 1, "network": 1, "port": 1, "guest": 1, "link": 2, "path": 1}, count
        assert ["uplink", "fail"] in kinds  # the REFUSED-first nameserver, on the host's side
        texts = [t.text for t in root.iter("text")]
        assert "virbr82 (diag)" in texts and "gport1" in texts and any(lease["ip"] in (t or "") for t in texts)
