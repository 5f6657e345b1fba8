"""playbooks/diagnose.yml over the netns connection: a hypervisor namespace and a guest namespace,
the table on stdout, and the JSON and HTML reports on the controller."""

from __future__ import annotations

import json
import re
import subprocess
import sys

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
    assert data["guests"][g1]["dns"]["queries"] == 3
    html = (report / "diagnose.html").read_text()
    assert "<h2 id=\"host-%s\">%s</h2>" % (hv1, hv1) in html and "ip_forward" in html and "br0" in html
    # the bridge's row names the checks that failed for it, the host-wide ip_forward included
    assert re.search(r"<td>vg1, vg2</td>.*?<td>[^<]*ip_forward[^<]*</td>\s*</tr>", html, re.S)
    assert "vg1, vg2" in html and "<script" not in html and "http" not in html.split("</title>")[1]
