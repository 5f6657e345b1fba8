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
