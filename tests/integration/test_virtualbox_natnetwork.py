"""virtualbox_natnetwork run as Ansible runs it, against a recorded VBoxManage.

VirtualBox cannot be installed on the test machine, so nothing here proves behaviour against a
real VirtualBox. The module runs for real (JSON args, AnsibleModule, Runner, lock) on the machine
itself (``lab.module(None, ...)``), with PATH pointing first at tests/fixtures/virtualbox/VBoxManage:
a stand-in that implements the documented ``natnetwork`` command line and prints the output
layout of VirtualBox 7 (or 6), keeping its state in a JSON file and logging every call.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

FAKE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "virtualbox"

NETWORK = {
    "name": "lab net",
    "network": "10.0.2.0/24",
    "dhcp": True,
    "port_forwards": [
        {"name": "ssh in", "host_port": 2222, "guest_ip": "10.0.2.15", "guest_port": 22},
        {"name": "dns", "protocol": "udp", "host_ip": "127.0.0.1", "host_port": 5353, "guest_ip": "10.0.2.15", "guest_port": 53},
        {"name": "web6", "host_port": 8080, "guest_ip": "fd17:625c:f037:2::15", "guest_port": 80},
    ],
    "loopback_mappings": [{"address": "127.0.0.1", "offset": 2}],
}


@pytest.fixture
def vbox(lab):
    """Run the module with the stand-in first on PATH; ``env`` is what the module process gets."""
    state_file, log = lab.tmp / "vbox-state.json", lab.tmp / "vbox-calls.jsonl"

    class Helper:
        env = {"PATH": "%s:%s" % (FAKE_DIR, os.environ["PATH"]), "FAKE_VBOX_STATE": str(state_file), "FAKE_VBOX_LOG": str(log),
               "FAKE_VBOX_PYTHON": sys.executable}

        def run(self, args, **kwargs):
            return lab.module(None, "virtualbox_natnetwork", args, env=self.env, **kwargs)

        def calls(self):
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def changes(self):
            return [call for call in self.calls() if call[:2] != ["natnetwork", "list"] and call[:2] != ["list", "natnets"]]

        def state(self):
            return json.loads(state_file.read_text()) if state_file.exists() else {"natnets": []}

    return Helper()


def test_create_then_idempotent(vbox):
    first = vbox.run(NETWORK, diff=True)
    assert first["changed"] is True
    assert len(first["commands"]) == 1 and first["commands"][0].startswith("VBoxManage natnetwork add --netname 'lab net'")
    assert first["before"] == {}
    assert first["after"]["dhcp"] is True and len(first["after"]["port_forwards"]) == 3
    assert first["diff"]["after"] == first["after"]
    net = vbox.state()["natnets"][0]
    assert net["rules4"] == ["dns:udp:[127.0.0.1]:5353:[10.0.2.15]:53", "ssh in:tcp:[]:2222:[10.0.2.15]:22"]
    assert net["rules6"] == ["web6:tcp:[]:8080:[fd17:625c:f037:2::15]:80"]
    assert net["loopbacks"] == [["127.0.0.1", 2]]

    again = vbox.run(NETWORK)
    assert again["changed"] is False and again["commands"] == []
    assert again["before"] == first["after"] and "after" not in again  # `after` only with a change
    assert len(vbox.changes()) == 1


def test_check_mode_changes_nothing_and_predicts(vbox):
    result = vbox.run(NETWORK, check_mode=True, diff=True)
    assert result["changed"] is True and len(result["commands"]) == 1
    assert result["after"]["name"] == "lab net" and len(result["after"]["port_forwards"]) == 3
    assert vbox.changes() == [] and vbox.state()["natnets"] == []


def test_update_changes_only_what_differs(vbox):
    vbox.run(NETWORK)
    changed = dict(NETWORK, dhcp=False, port_forwards=NETWORK["port_forwards"][:1] + [
        {"name": "dns", "protocol": "udp", "host_ip": "127.0.0.1", "host_port": 5354, "guest_ip": "10.0.2.15", "guest_port": 53}])
    result = vbox.run(changed, diff=True)
    assert result["changed"] is True
    assert vbox.changes()[-1] == [
        "natnetwork", "modify", "--netname", "lab net", "--dhcp", "off",
        "--port-forward-4", "delete", "dns", "--port-forward-6", "delete", "web6",
        "--port-forward-4", "dns:udp:[127.0.0.1]:5354:[10.0.2.15]:53"]
    assert result["diff"]["before"]["dhcp"] is True and result["diff"]["after"]["dhcp"] is False
    assert vbox.run(changed)["changed"] is False


def test_virtualbox6_layout_falls_back_to_list_natnets(vbox):
    vbox.run(NETWORK)
    vbox.env["FAKE_VBOX_VERSION"] = "6"
    result = vbox.run(NETWORK)
    assert result["changed"] is False
    assert ["list", "natnets"] in vbox.calls()


def test_absent_removes_and_is_idempotent(vbox):
    vbox.run(NETWORK)
    gone = vbox.run({"name": "lab net", "state": "absent"})
    assert gone["changed"] is True and gone["commands"] == ["VBoxManage natnetwork remove --netname 'lab net'"]
    assert gone["after"] == {} and vbox.state()["natnets"] == []
    assert vbox.run({"name": "lab net", "state": "absent"})["changed"] is False


def test_bad_input_fails_before_any_call(vbox):
    bad = dict(NETWORK, port_forwards=[{"name": "a:b", "host_port": 1, "guest_ip": "10.0.2.15", "guest_port": 1}])
    result = vbox.run(bad, expect_fail=True)
    assert "port_forwards[0].name" in result["msg"] and "'a:b'" in result["msg"]
    assert vbox.calls() == []


def test_missing_vboxmanage_is_a_clear_error(vbox):
    vbox.env["PATH"] = "/nonexistent"
    result = vbox.run(NETWORK, expect_fail=True)
    assert "VBoxManage" in result["msg"] and "not installed" in result["msg"]


def test_documented_examples_run_as_written(vbox):
    """The EXAMPLES of the module, task by task, create and then remove the network."""
    from ansible_collections.hypervisor.network.plugins.modules import virtualbox_natnetwork

    tasks = yaml.safe_load(virtualbox_natnetwork.EXAMPLES)
    created = vbox.run(tasks[0]["hypervisor.network.virtualbox_natnetwork"])
    assert created["changed"] is True and len(created["after"]["port_forwards"]) == 2
    assert vbox.run(tasks[0]["hypervisor.network.virtualbox_natnetwork"])["changed"] is False
    assert vbox.run(tasks[1]["hypervisor.network.virtualbox_natnetwork"])["changed"] is True
    assert vbox.state()["natnets"] == []
