"""The guest_dns role, run by ansible-playbook on the controller with its files in the test's temp
dir: a namespace guest whose resolv.conf pointed elsewhere asks the gateway afterwards
(guest_probe's guest_resolver, run in the guest namespace, says so), Docker's
daemon.json keeps its other keys, the systemd-resolved drop-in is written, and a second run and
check mode change nothing."""

from __future__ import annotations

import json

from netfilter_topology import GATEWAY, UPSTREAM, build
from playbook_runner import recap_changed, run_playbook

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: hypervisor.network.guest_dns
      vars:
        guest_dns_servers: [%(gateway)s]
        guest_dns_resolver: %(mode)s
        guest_dns_resolv_conf: %(tmp)s/resolv.conf
        guest_dns_resolved_dropin: %(tmp)s/resolved.conf.d/50-hypervisor-network.conf
        guest_dns_docker: always
        guest_dns_docker_daemon_json: %(tmp)s/docker/daemon.json
        guest_dns_manage_services: false
"""


def play(lab, mode, *extra, check=True):
    text = PLAY % {"gateway": GATEWAY, "mode": mode, "tmp": lab.tmp}
    return run_playbook(lab.tmp, text, *extra, check=check, ANSIBLE_SSH_CONTROL_PATH_DIR=str(lab.tmp / "cp"))


def resolver_status(lab, guest):
    args = {"count": 1, "timeout": 0.5, "names": ["g2.lan"], "resolv_conf": str(lab.tmp / "resolv.conf")}
    probe = lab.module(guest, "guest_probe", args)
    (found,) = [f for f in probe["findings"] if f["check"] == "guest_resolver"]
    return found["status"]


def test_guest_dns_points_resolver_and_docker_at_the_gateway(lab):
    topo = build(lab)
    resolv = lab.tmp / "resolv.conf"
    resolv.write_text("# from the image\nnameserver %s\noptions edns0 timeout:2\nsearch old.example\n" % UPSTREAM)
    daemon = lab.tmp / "docker" / "daemon.json"
    daemon.parent.mkdir()
    daemon.write_text(json.dumps({"log-driver": "journald", "dns": ["192.0.2.53"], "features": {"buildkit": True}}))
    assert resolver_status(lab, topo.g1) == "warn"

    assert recap_changed(play(lab, "resolv_conf", "--check").stdout) >= 1
    assert "nameserver %s" % UPSTREAM in resolv.read_text() and json.loads(daemon.read_text())["dns"] == ["192.0.2.53"]

    assert recap_changed(play(lab, "resolv_conf").stdout) == 2
    assert resolv.read_text() == "# from the image\noptions edns0 timeout:2\nsearch old.example\nnameserver %s\n" % GATEWAY
    assert json.loads(daemon.read_text()) == {"log-driver": "journald", "dns": [GATEWAY], "features": {"buildkit": True}}
    assert resolver_status(lab, topo.g1) == "ok"
    assert recap_changed(play(lab, "resolv_conf").stdout) == 0

    assert recap_changed(play(lab, "systemd_resolved").stdout) == 2  # the directory and the drop-in
    dropin = (lab.tmp / "resolved.conf.d" / "50-hypervisor-network.conf").read_text()
    assert "[Resolve]\nDNS=%s\nDomains=~.\n" % GATEWAY in dropin


def test_guest_dns_refuses_a_value_that_breaks_out_of_its_line(lab):
    text = PLAY % {"gateway": '"10.0.0.1\\nnameserver 203.0.113.66"', "mode": "resolv_conf", "tmp": lab.tmp}
    (lab.tmp / "resolv.conf").write_text("nameserver 198.51.100.10\n")
    proc = run_playbook(lab.tmp, text, check=False, ANSIBLE_SSH_CONTROL_PATH_DIR=str(lab.tmp / "cp"))
    assert proc.returncode != 0 and "is not an address or a domain name" in proc.stdout, proc.stdout
    assert (lab.tmp / "resolv.conf").read_text() == "nameserver 198.51.100.10\n"
