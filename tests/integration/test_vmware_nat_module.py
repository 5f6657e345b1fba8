"""vmware_nat run as Ansible runs it, against a nat.conf fixture and a stand-in vmware-networks.

VMware Workstation cannot be installed on the test machine, so nothing here proves behaviour
against a real vmnet NAT daemon. The module runs for real on the machine itself
(``lab.module(None, ...)``) and edits a copy of tests/unit/fixtures/vmware/nat.conf (the layout
Workstation writes for vmnet8) in the test's temp dir, never /etc; the restart goes to
tests/fixtures/vmware/vmware-networks, which only logs its calls.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

TESTS = Path(__file__).resolve().parents[1]
FAKE_DIR = TESTS / "fixtures" / "vmware"
STOCK = TESTS / "unit" / "fixtures" / "vmware" / "nat.conf"

FORWARDS = [
    {"host_port": 8080, "guest_ip": "192.168.79.130", "guest_port": 80},
    {"protocol": "udp", "host_port": 5353, "guest_ip": "192.168.79.130", "guest_port": 53},
]


@pytest.fixture
def vmnat(lab):
    conf, log = lab.tmp / "vmnet8" / "nat" / "nat.conf", lab.tmp / "vmware-calls.log"
    conf.parent.mkdir(parents=True)
    shutil.copy(STOCK, conf)

    class Helper:
        path = conf
        env = {"PATH": "%s:%s" % (FAKE_DIR, os.environ["PATH"]), "FAKE_VMWARE_LOG": str(log)}

        def run(self, args, **kwargs):
            return lab.module(None, "vmware_nat", dict(args, path=str(conf)), env=self.env, **kwargs)

        def restarts(self):
            return log.read_text().splitlines() if log.exists() else []

    return Helper()


def test_add_restart_once_then_idempotent(vmnat):
    first = vmnat.run({"port_forwards": FORWARDS, "dns": {"policy": "order", "nameservers": ["192.0.2.53"]}}, diff=True)
    assert first["changed"] is True
    assert first["commands"] == ["write %s" % vmnat.path, "vmware-networks --stop", "vmware-networks --start"]
    assert vmnat.restarts() == ["vmware-networks --stop", "vmware-networks --start"]
    text = vmnat.path.read_text()
    assert "8080 = 192.168.79.130:80" in text and "5353 = 192.168.79.130:53" in text
    added = {"8080 = 192.168.79.130:80", "5353 = 192.168.79.130:53", "", "[dns]", "policy = order", "autodetect = 0", "nameserver1 = 192.0.2.53"}
    kept = [line for line in text.splitlines() if line not in added]
    assert kept == [line for line in STOCK.read_text().splitlines() if line != ""]  # every comment and section kept, in order
    assert first["diff"]["before"] == STOCK.read_text() and first["diff"]["after"] == text
    assert {"protocol": "udp", "host_port": 5353, "guest_ip": "192.168.79.130", "guest_port": 53} in first["after"]["port_forwards"]
    assert first["after"]["dns"] == {"policy": "order", "autodetect": "0", "nameserver1": "192.0.2.53"}

    again = vmnat.run({"port_forwards": FORWARDS, "dns": {"policy": "order", "nameservers": ["192.0.2.53"]}})
    assert again["changed"] is False and again["commands"] == []
    assert len(vmnat.restarts()) == 2  # no restart without a change


def test_check_mode_writes_and_restarts_nothing(vmnat):
    result = vmnat.run({"port_forwards": FORWARDS}, check_mode=True, diff=True)
    assert result["changed"] is True and result["commands"][0] == "write %s" % vmnat.path
    assert "8080 = 192.168.79.130:80" in result["diff"]["after"]
    assert vmnat.path.read_text() == STOCK.read_text() and vmnat.restarts() == []


def test_absent_and_custom_restart(vmnat):
    result = vmnat.run({"state": "absent", "port_forwards": [{"host_port": 2222}], "restart_command": ["vmware-networks --status"]})
    assert result["changed"] is True and "2222 =" not in vmnat.path.read_text()
    assert vmnat.restarts() == ["vmware-networks --status"]
    assert vmnat.run({"state": "absent", "port_forwards": [{"host_port": 2222}]})["changed"] is False


def test_failed_restart_is_reported_after_the_write(vmnat):
    vmnat.env["FAKE_VMWARE_FAIL"] = "--start"
    result = vmnat.run({"port_forwards": FORWARDS}, expect_fail=True)
    assert result["rc"] == 1 and "Failed to start NAT service" in result["msg"]
    assert "was written, but restarting the NAT service failed" in result["msg"]
    assert "8080 = 192.168.79.130:80" in vmnat.path.read_text()


def test_bad_input_changes_nothing(vmnat):
    result = vmnat.run({"port_forwards": [{"host_port": 8080, "guest_ip": "10.1.1.1", "guest_port": 80}]}, expect_fail=True)
    assert "port_forwards[0].guest_ip" in result["msg"] and "'10.1.1.1'" in result["msg"] and "192.168.79.0/24" in result["msg"]
    assert vmnat.path.read_text() == STOCK.read_text() and vmnat.restarts() == []


def test_missing_file_is_a_clear_error(lab):
    result = lab.module(None, "vmware_nat", {"path": str(lab.tmp / "nope" / "nat.conf")}, expect_fail=True)
    assert "does not exist" in result["msg"]


def test_documented_examples_run(vmnat):
    """The EXAMPLES of the module, with path pointed at the temp copy and the restart at the
    stand-in (the second example's systemctl must not reach this machine's services)."""
    from ansible_collections.hypervisor.network.plugins.modules import vmware_nat

    tasks = [task["hypervisor.network.vmware_nat"] for task in yaml.safe_load(vmware_nat.EXAMPLES)]
    first = vmnat.run(tasks[0])
    assert first["changed"] is True and first["after"]["dns"]["nameserver2"] == "198.51.100.53"
    second = vmnat.run(dict(tasks[1], restart_command=["vmware-networks --status"]))
    assert second["changed"] is True and "2222 =" not in vmnat.path.read_text()
