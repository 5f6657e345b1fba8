"""The vmware_workstation_host role run by ansible-playbook on localhost.

No VMware Workstation here: the role edits copies of the nat.conf fixture (the layout Workstation
writes) in the test's temp dir, and its handler calls the stand-in tests/fixtures/vmware/
vmware-networks, which only logs. Proves the role's wiring, one restart for two changed vmnets,
and idempotence, not VMware itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from playbook_runner import recap_changed, run_playbook

TESTS = Path(__file__).resolve().parents[1]
STOCK = TESTS / "unit" / "fixtures" / "vmware" / "nat.conf"

PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: hypervisor.network.vmware_workstation_host
      vars:
        vmware_workstation_host_vmnets:
          - path: {tmp}/vmnet8.conf
            purge_port_forwards: true
            port_forwards:
              - {{host_port: 8080, guest_ip: 192.168.79.130, guest_port: 80}}
            dns: {{policy: rotate, nameservers: [192.0.2.53, 192.0.2.54]}}
          - path: {tmp}/vmnet9.conf
            port_forwards:
              - {{protocol: udp, host_port: 6000, guest_ip: 192.168.79.131, guest_port: 6001}}
"""


def test_role_restarts_once_and_is_idempotent(lab):
    for name in ("vmnet8.conf", "vmnet9.conf"):
        shutil.copy(STOCK, lab.tmp / name)
    log = lab.tmp / "restarts.log"
    play = PLAY.format(tmp=lab.tmp)

    checked = run_playbook(lab.tmp, play, "--check", path_first=[TESTS / "fixtures" / "vmware"], FAKE_VMWARE_LOG=str(log))
    assert recap_changed(checked.stdout) >= 1 and not log.exists()
    assert (lab.tmp / "vmnet8.conf").read_text() == STOCK.read_text()

    first = run_playbook(lab.tmp, play, path_first=[TESTS / "fixtures" / "vmware"], FAKE_VMWARE_LOG=str(log))
    assert recap_changed(first.stdout) == 2  # the looped vmware_nat task (both files) and one handler run
    assert log.read_text().splitlines() == ["vmware-networks --stop", "vmware-networks --start"]
    eight = (lab.tmp / "vmnet8.conf").read_text()
    assert "2222 = 192.168.79.128:22" not in eight and "8080 = 192.168.79.130:80" in eight
    assert "nameserver2 = 192.0.2.54" in eight
    assert "6000 = 192.168.79.131:6001" in (lab.tmp / "vmnet9.conf").read_text()

    again = run_playbook(lab.tmp, play, path_first=[TESTS / "fixtures" / "vmware"], FAKE_VMWARE_LOG=str(log))
    assert recap_changed(again.stdout) == 0 and len(log.read_text().splitlines()) == 2
