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


NETWORKING = """VERSION=1,0
answer VNET_1_DHCP yes
answer VNET_1_DHCP_CFG_HASH 9503E18413CDE50A84F0D124C42535C62DF8193B
answer VNET_1_HOSTONLY_NETMASK 255.255.255.0
answer VNET_1_HOSTONLY_SUBNET 192.168.56.0
answer VNET_1_VIRTUAL_ADAPTER yes
answer VNET_8_DHCP yes
answer VNET_8_HOSTONLY_NETMASK 255.255.255.0
answer VNET_8_HOSTONLY_SUBNET 192.168.79.0
answer VNET_8_NAT yes
answer VNET_8_VIRTUAL_ADAPTER yes
"""

HOSTONLY_PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: hypervisor.network.vmware_workstation_host
      vars:
        vmware_workstation_host_networking: {tmp}/networking
        vmware_workstation_host_hostonly:
          - {{vmnet: vmnet1, subnet: 172.16.10.0/23, dhcp: false}}
          - {{vmnet: vmnet2, subnet: 10.20.0.0/16}}
"""


def test_hostonly_subnet_and_dhcp_lines_restart_once_and_keep_the_rest(lab):
    networking = lab.tmp / "networking"
    networking.write_text(NETWORKING)
    log = lab.tmp / "restarts.log"
    play = HOSTONLY_PLAY.format(tmp=lab.tmp)
    fake = [TESTS / "fixtures" / "vmware"]
    assert recap_changed(run_playbook(lab.tmp, play, "--check", path_first=fake, FAKE_VMWARE_LOG=str(log)).stdout) >= 1
    assert networking.read_text() == NETWORKING and not log.exists()

    assert recap_changed(run_playbook(lab.tmp, play, path_first=fake, FAKE_VMWARE_LOG=str(log)).stdout) == 2
    lines = networking.read_text().splitlines()
    assert "answer VNET_1_DHCP no" in lines and "answer VNET_1_HOSTONLY_SUBNET 172.16.10.0" in lines
    assert "answer VNET_1_HOSTONLY_NETMASK 255.255.254.0" in lines
    assert lines[-2:] == ["answer VNET_2_HOSTONLY_SUBNET 10.20.0.0", "answer VNET_2_HOSTONLY_NETMASK 255.255.0.0"]
    untouched = [line for line in NETWORKING.splitlines() if not line.startswith(("answer VNET_1_DHCP ", "answer VNET_1_HOSTONLY"))]
    assert [line for line in lines if line in untouched] == untouched
    assert log.read_text().splitlines() == ["vmware-networks --stop", "vmware-networks --start"]
    assert recap_changed(run_playbook(lab.tmp, play, path_first=fake, FAKE_VMWARE_LOG=str(log)).stdout) == 0


def test_hostonly_subnet_with_host_bits_is_refused_before_any_change(lab):
    networking = lab.tmp / "networking"
    networking.write_text(NETWORKING)
    play = HOSTONLY_PLAY.format(tmp=lab.tmp).replace("172.16.10.0/23", "172.16.11.0/23")
    proc = run_playbook(lab.tmp, play, path_first=[TESTS / "fixtures" / "vmware"], check=False)
    assert proc.returncode != 0 and "172.16.11.0/23 has host bits set" in proc.stdout, proc.stdout
    assert networking.read_text() == NETWORKING
