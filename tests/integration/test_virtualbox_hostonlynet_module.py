# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""virtualbox_hostonlynet and the virtualbox_host role's host-only networks, run as Ansible runs
them, against the VBoxManage stand-in.

VirtualBox cannot be installed on the test machine, so nothing here proves behaviour against a
real VirtualBox: the module runs for real (JSON args, AnsibleModule, Runner, lock) with PATH
pointing first at tests/fixtures/virtualbox/VBoxManage, whose ``hostonlynet`` commands and
``list hostonlynets`` layout were written from VirtualBox's documentation and source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from netlab import COLLECTIONS, REPO

FAKE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "virtualbox"

NET = {"name": "lab hostonly", "netmask": "255.255.255.0", "lower_ip": "192.168.60.2", "upper_ip": "192.168.60.199"}


@pytest.fixture
def vbox(lab):
    state_file, log = lab.tmp / "vbox-state.json", lab.tmp / "vbox-calls.jsonl"

    class Helper:
        env = {"PATH": "%s:%s" % (FAKE_DIR, os.environ["PATH"]), "FAKE_VBOX_STATE": str(state_file),
               "FAKE_VBOX_LOG": str(log), "FAKE_VBOX_PYTHON": sys.executable}

        def run(self, args, **kwargs):
            return lab.module(None, "virtualbox_hostonlynet", args, env=self.env, **kwargs)

        def calls(self):
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def changes(self):
            return [call for call in self.calls() if call[:2] != ["list", "hostonlynets"]]

        def nets(self):
            return json.loads(state_file.read_text()).get("hostonlynets", []) if state_file.exists() else []

    return Helper()


def test_check_mode_create_idempotent_modify_remove(vbox):
    dry = vbox.run(NET, check_mode=True, diff=True)
    assert dry["changed"] is True and vbox.changes() == [] and vbox.nets() == []
    add = ("VBoxManage hostonlynet add '--name=lab hostonly' --netmask=255.255.255.0 --lower-ip=192.168.60.2 "
           "--upper-ip=192.168.60.199 --enable")
    assert dry["commands"] == [add]
    assert dry["diff"] == {"before": {}, "after": dict(NET, id=None, enabled=True)}

    first = vbox.run(NET)
    assert first["changed"] is True and first["commands"] == [add]
    assert vbox.changes() == [["hostonlynet", "add", "--name=lab hostonly", "--netmask=255.255.255.0",
                               "--lower-ip=192.168.60.2", "--upper-ip=192.168.60.199", "--enable"]]
    assert first["before"] == {}
    assert first["after"] == dict(NET, id=vbox.nets()[0]["id"], enabled=True), "after is read back"

    again = vbox.run(NET)
    assert again["changed"] is False and again["commands"] == [] and "after" not in again
    assert len(vbox.changes()) == 1

    changed = vbox.run(dict(NET, upper_ip="192.168.60.99", enabled=False))
    assert changed["commands"] == ["VBoxManage hostonlynet modify '--name=lab hostonly' --upper-ip=192.168.60.99 --disable"]
    assert changed["after"]["upper_ip"] == "192.168.60.99" and changed["after"]["enabled"] is False
    assert vbox.nets()[0]["lower_ip"] == "192.168.60.2"

    gone = vbox.run({"name": "lab hostonly", "state": "absent"})
    assert gone["commands"] == ["VBoxManage hostonlynet remove '--name=lab hostonly'"] and gone["after"] == {}
    assert vbox.nets() == []
    assert vbox.run({"name": "lab hostonly", "state": "absent"})["changed"] is False


def test_host_only_networks_of_others_are_left_alone(vbox):
    """The module owns the network it names, nothing else (docs/ownership.md): a network someone
    made by hand survives our create, modify and remove untouched."""
    theirs = {"name": "hand made", "netmask": "255.255.255.0", "lower_ip": "192.168.70.2", "upper_ip": "192.168.70.99"}
    vbox.run(theirs)
    (before,) = vbox.nets()
    vbox.run(NET)
    vbox.run(dict(NET, upper_ip="192.168.60.99", enabled=False))
    vbox.run({"name": "lab hostonly", "state": "absent"})
    assert vbox.nets() == [before]


@pytest.mark.parametrize("args, field, value", [
    (dict(NET, netmask="255.0.255.0"), "netmask", "'255.0.255.0'"),
    (dict(NET, netmask="24"), "netmask", "'24'"),
    (dict(NET, lower_ip="192.168.60.300"), "lower_ip", "'192.168.60.300'"),
    (dict(NET, upper_ip="192.168.61.10"), "upper_ip", "'192.168.61.10'"),
    (dict(NET, lower_ip="192.168.60.50", upper_ip="192.168.60.10"), "upper_ip", "'192.168.60.10'"),
    (dict(NET, upper_ip="192.168.60.255"), "upper_ip", "'192.168.60.255'"),
    ({"name": "x"}, "lower_ip", "None"),
    (dict(NET, name=" padded"), "name", "' padded'"),
    (dict(NET, name="two\nlines"), "name", "'two\\nlines'"),
])
def test_bad_input_is_refused_before_virtualbox_is_asked(vbox, args, field, value):
    result = vbox.run(args, expect_fail=True)
    assert result["msg"].startswith("%s: %s is not valid" % (field, value)), result["msg"]
    assert vbox.calls() == [], "VBoxManage was run for bad input"


def test_a_virtualbox_without_host_only_networks_is_named(vbox):
    vbox.env = dict(vbox.env, FAKE_VBOX_VMNET="0")
    result = vbox.run(NET, expect_fail=True)
    assert "cannot list host-only networks" in result["msg"] and "vboxnetN" in result["msg"]
    assert vbox.changes() == []


def run_role(tmp, env, hostvars):
    (tmp / "vb-inv.json").write_text(json.dumps({"all": {"hosts": {"vbox": dict({
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}, **hostvars)}}}))
    (tmp / "vb-play.yml").write_text(yaml.safe_dump(
        [{"hosts": "all", "gather_facts": False, "roles": ["hypervisor.network.virtualbox_host"]}]))
    full_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                    ANSIBLE_NOCOLOR="1", ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / "cp"), **env)
    full_env["PATH"] = "%s:%s" % (Path(sys.executable).parent, env["PATH"])
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "vb-inv.json"),
                           str(tmp / "vb-play.yml")], capture_output=True, text=True, env=full_env, timeout=600,
                          cwd=str(REPO), check=False)


def test_the_role_manages_host_only_networks(lab, vbox):
    nets = [NET, {"name": "second", "lower_ip": "10.66.0.10", "upper_ip": "10.66.0.20", "netmask": "255.255.0.0",
                  "enabled": False}]
    proc = run_role(lab.tmp, vbox.env, {"virtualbox_host_hostonly_networks": nets})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [(n["name"], n["netmask"], n["lower_ip"], n["upper_ip"], n["enabled"]) for n in vbox.nets()] == [
        ("lab hostonly", "255.255.255.0", "192.168.60.2", "192.168.60.199", True),
        ("second", "255.255.0.0", "10.66.0.10", "10.66.0.20", False)]
    again = run_role(lab.tmp, vbox.env, {"virtualbox_host_hostonly_networks": nets})
    assert again.returncode == 0 and "changed=0" in again.stdout.split("PLAY RECAP", 1)[1], again.stdout
    removed = run_role(lab.tmp, vbox.env, {"virtualbox_host_hostonly_networks": [{"name": "second", "state": "absent"}]})
    assert removed.returncode == 0, removed.stdout
    assert [n["name"] for n in vbox.nets()] == ["lab hostonly"]
