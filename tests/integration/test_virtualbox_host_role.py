"""The virtualbox_host role run by ansible-playbook on localhost against the stand-in VBoxManage.

No VirtualBox here: tests/fixtures/virtualbox/VBoxManage replays the documented command line
and output formats (natnetwork list, showvminfo --machinereadable, modifyvm --natdns*), with its
state in a JSON file in the test's temp dir. Proves the role's wiring, idempotence and check mode,
not VirtualBox itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from playbook_runner import recap_changed, run_playbook

FAKE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "virtualbox"

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: hypervisor.network.virtualbox_host
      vars:
        virtualbox_host_natnetworks:
          - name: lab net
            network: 10.0.2.0/24
            port_forwards:
              - {name: ssh, host_port: 2222, guest_ip: 10.0.2.15, guest_port: 22}
        virtualbox_host_vm_nat_dns:
          - {vm: builder, dns_proxy: false, host_resolver: true}
          - {vm: other vm, adapter: 2, dns_proxy: true}
"""


def play(tmp, *extra):
    return run_playbook(tmp, PLAY, *extra, path_first=[FAKE_DIR], FAKE_VBOX_STATE=str(tmp / "state.json"),
                        FAKE_VBOX_LOG=str(tmp / "calls.jsonl"), FAKE_VBOX_PYTHON=sys.executable).stdout


def test_role_converges_idempotently_and_respects_check_mode(lab):
    state = lab.tmp / "state.json"
    state.write_text(json.dumps({"natnets": [], "vms": {
        "builder": {"natdnsproxy1": "on", "natdnshostresolver1": "off"},
        "other vm": {"natdnsproxy2": "on", "natdnshostresolver2": "off"}}}))

    checked = play(lab.tmp, "--check")
    assert recap_changed(checked) >= 1
    assert json.loads(state.read_text())["natnets"] == []

    first = play(lab.tmp)
    assert recap_changed(first) == 2  # the network, and builder's DNS; "other vm" already matched
    data = json.loads(state.read_text())
    assert data["natnets"][0]["rules4"] == ["ssh:tcp:[]:2222:[10.0.2.15]:22"]
    assert data["vms"]["builder"] == {"natdnsproxy1": "off", "natdnshostresolver1": "on"}
    assert data["vms"]["other vm"] == {"natdnsproxy2": "on", "natdnshostresolver2": "off"}

    assert recap_changed(play(lab.tmp)) == 0


PF_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: hypervisor.network.virtualbox_host
      vars:
        virtualbox_host_vm_port_forwards:
          - vm: builder
            port_forwards:
              - {name: ssh, host_port: 2222, guest_port: 22}
              - {name: web, protocol: tcp, host_ip: 127.0.0.1, host_port: 8080, guest_port: 80}
          - vm: running vm
            adapter: 2
            purge: true
            port_forwards:
              - {name: dns, protocol: udp, host_port: 5353, guest_ip: 10.0.2.15, guest_port: 53}
"""


def pf_play(tmp, *extra, text=PF_PLAY, check=True):
    return run_playbook(tmp, text, *extra, path_first=[FAKE_DIR], FAKE_VBOX_STATE=str(tmp / "state.json"),
                        FAKE_VBOX_LOG=str(tmp / "calls.jsonl"), FAKE_VBOX_PYTHON=sys.executable, check=check)


def test_vm_port_forwards_added_replaced_purged_idempotent_and_check_mode(lab):
    state = lab.tmp / "state.json"
    state.write_text(json.dumps({"natnets": [], "vms": {
        "builder": {"pf": {"1": ["web,tcp,,8080,,80", "rdp,tcp,,3389,,3389"]}},
        "running vm": {"state": "running", "pf": {"1": ["keep,tcp,,1,,1"], "2": ["old,tcp,,9000,,9000"]}}}}))
    before = state.read_text()
    assert recap_changed(pf_play(lab.tmp, "--check").stdout) == 0  # the commands do not run in check mode
    assert state.read_text() == before

    first = pf_play(lab.tmp).stdout
    assert recap_changed(first) == 1  # one task, three commands
    vms = json.loads(state.read_text())["vms"]
    # builder is powered off: one modifyvm; web is replaced (other host address), rdp (not wanted, no purge) stays
    assert sorted(vms["builder"]["pf"]["1"]) == ["rdp,tcp,,3389,,3389", "ssh,tcp,,2222,,22", "web,tcp,127.0.0.1,8080,,80"]
    # the running VM: controlvm per change; adapter 1 is not touched, adapter 2 purged
    assert vms["running vm"]["pf"] == {"1": ["keep,tcp,,1,,1"], "2": ["dns,udp,,5353,10.0.2.15,53"]}
    calls = [json.loads(line) for line in (lab.tmp / "calls.jsonl").read_text().splitlines()]
    assert ["modifyvm", "builder", "--natpf1", "delete", "web", "--natpf1", "ssh,tcp,,2222,,22",
            "--natpf1", "web,tcp,127.0.0.1,8080,,80"] in calls
    assert ["controlvm", "running vm", "natpf2", "delete", "old"] in calls

    assert recap_changed(pf_play(lab.tmp).stdout) == 0


def test_vm_port_forward_name_that_would_break_the_rule_is_refused(lab):
    state = lab.tmp / "state.json"
    state.write_text(json.dumps({"natnets": [], "vms": {"builder": {}}}))
    text = PF_PLAY.replace("{name: ssh,", "{name: 'ssh,udp,,53,,53',")
    proc = pf_play(lab.tmp, text=text, check=False)
    assert proc.returncode != 0 and "the name takes letters" in proc.stdout, proc.stdout
    assert json.loads(state.read_text())["vms"]["builder"] == {}


HOSTONLY_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: hypervisor.network.virtualbox_host
      vars:
        virtualbox_host_hostonly_interfaces:
          - {name: vboxnet0, ip: 192.168.56.1}
          - {name: vboxnet1, ip: 10.10.0.1, netmask: 255.255.0.0}
"""


def test_hostonly_interfaces_created_addressed_idempotent_and_wrong_names_refused(lab):
    state = lab.tmp / "state.json"
    state.write_text(json.dumps({"natnets": [], "vms": {}, "hostonlyifs": {
        "vboxnet0": {"ip": "192.168.99.1", "netmask": "255.255.255.0"}}}))
    before = state.read_text()
    assert recap_changed(pf_play(lab.tmp, "--check", text=HOSTONLY_PLAY).stdout) == 0  # commands do not run in check mode
    assert state.read_text() == before
    assert recap_changed(pf_play(lab.tmp, text=HOSTONLY_PLAY).stdout) == 2  # create vboxnet1, address both
    wanted = {"vboxnet0": {"ip": "192.168.56.1", "netmask": "255.255.255.0"},
              "vboxnet1": {"ip": "10.10.0.1", "netmask": "255.255.0.0"}}
    assert json.loads(state.read_text())["hostonlyifs"] == wanted
    assert recap_changed(pf_play(lab.tmp, text=HOSTONLY_PLAY).stdout) == 0

    wrong = HOSTONLY_PLAY.replace("vboxnet1", "vboxnet3")
    proc = pf_play(lab.tmp, text=wrong, check=False)
    assert proc.returncode != 0 and "creating vboxnet3 would create vboxnet2" in proc.stdout, proc.stdout
    assert "vboxnet2" not in json.loads(state.read_text())["hostonlyifs"]
