"""libvirt_interface changes only the NIC it tunes, on a real libvirtd.

A defined domain keeps its VNC password and every other device when one NIC is tuned, and the
module reads the domain only under the host lock, so a change made meanwhile by another writer
is not overwritten by a stale copy.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from libvirt_lab import holding_host_lock, libvirt_host
from netlab import Lab

pytestmark = pytest.mark.slow

NETWORK = "<network><name>keep</name><bridge name='virbr65'/><ip address='10.65.0.1' prefix='24'/></network>"

DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <description>defined by hand, with a VNC password</description>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <interface type='network'><mac address='52:54:00:61:00:20'/><source network='keep'/><model type='virtio'/></interface>
    <interface type='network'><mac address='52:54:00:61:00:21'/><source network='keep'/><model type='e1000'/></interface>
    <graphics type='vnc' port='-1' autoport='yes' passwd='s3cretpw'/>
    <serial type='pty'/>
    <console type='pty'/>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


@pytest.fixture(scope="module")
def hv():
    lab = Lab(tag="nic")
    try:
        with libvirt_host(lab) as (host, _upstream):
            host.virsh(["net-define", "/dev/stdin"], input=NETWORK)
            host.virsh(["net-start", "keep"])
            yield host
    finally:
        lab.close()


def without(xml, parts=()):
    """Canonical XML minus ``parts`` ((parent path, child tag)): two definitions that differ only
    there compare equal."""
    root = ET.fromstring(xml)
    for parent_path, tag in parts:
        for parent in root.findall(parent_path):
            for child in parent.findall(tag):
                parent.remove(child)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


def domain_xml(hv, name):
    return hv.virsh(["dumpxml", "--inactive", "--security-info", name]).stdout


def test_tuning_a_nic_keeps_the_domains_secrets_and_other_devices(hv):
    hv.virsh(["define", "/dev/stdin"], input=DOMAIN.format(name="secretive"))
    before = domain_xml(hv, "secretive")
    assert "passwd='s3cretpw'" in before
    args = dict(domain="secretive", network="keep", mac="52:54:00:61:00:20", queues=2, rx_queue_size=1024)
    result = hv.module("libvirt_interface", args)
    assert result["changed"] and "s3cret" not in str(result)
    after = domain_xml(hv, "secretive")
    owned = [("devices/interface", "driver")]
    assert without(after, owned) == without(before, owned)
    root = ET.fromstring(after)
    assert root.find("devices/graphics").get("passwd") == "s3cretpw"
    assert root.find("devices/interface/driver").attrib == {"queues": "2", "rx_queue_size": "1024"}
    assert not hv.module("libvirt_interface", dict(domain="secretive", network="keep", mac="52:54:00:61:00:20", queues=2))["changed"]
    hv.virsh(["undefine", "secretive"])


def test_interface_reads_the_domain_only_under_the_lock(hv):
    """Another writer changes the same NIC while the module waits for the host lock: the module
    must read after it, so both changes are there in the end."""
    hv.virsh(["define", "/dev/stdin"], input=DOMAIN.format(name="locked"))
    nic = ("<interface type='network'><mac address='52:54:00:61:00:20'/><source network='keep'/><model type='virtio'/>"
           "<driver rx_queue_size='512'/></interface>")
    with ThreadPoolExecutor(1) as pool:
        with holding_host_lock(hv) as wait_for_waiter:
            future = pool.submit(hv.module, "libvirt_interface",
                                 dict(domain="locked", network="keep", mac="52:54:00:61:00:20", queues=4))
            wait_for_waiter(future)
            hv.virsh(["update-device", "locked", "/dev/stdin", "--config"], input=nic)
        result = future.result(timeout=120)
    assert result["changed"]
    driver = ET.fromstring(domain_xml(hv, "locked")).find("devices/interface/driver")
    assert driver.attrib == {"queues": "4", "rx_queue_size": "512"}
    hv.virsh(["undefine", "locked"])
