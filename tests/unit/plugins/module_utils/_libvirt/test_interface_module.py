# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_interface: option validation and the NIC rewrite of a captured domain XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import interface_module as iface
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError, ValidationError

DOMAIN = (Path(__file__).resolve().parents[1] / "fixtures" / "libvirt" / "domain_two_nics.xml").read_text()


def params(**changes):
    base = dict(network="guests", mac="52:54:00:77:08:10", model=None, queues=None, rx_queue_size=None, tx_queue_size=None)
    base.update(changes)
    return base


def test_nic_is_found_by_network_and_mac():
    root = ET.fromstring(DOMAIN)
    assert iface.read_nic(iface.find_nic(root, "other")).mac == "52:54:00:77:09:10"
    with pytest.raises(HypervisorNetworkError, match="more than one NIC on network guests.*set mac"):
        iface.find_nic(root, "guests")
    with pytest.raises(HypervisorNetworkError, match="no NIC on network nowhere"):
        iface.find_nic(root, "nowhere")


def test_queues_are_set_and_the_rest_of_the_domain_is_kept():
    root = ET.fromstring(DOMAIN)
    nic = iface.find_nic(root, "guests", "52:54:00:77:08:10")
    iface.apply_settings(nic, iface.settings_from_params(params(queues=4, rx_queue_size=1024, tx_queue_size=256)))
    assert iface.read_nic(nic) == iface.NicSettings("52:54:00:77:08:10", "guests", "virtio", 4, 1024, 256)
    text = ET.tostring(root, encoding="unicode")
    assert "<qemu:arg value=\"-no-user-config\" />" in text and "slot=\"0x03\"" in text


@pytest.mark.parametrize("change, field", [
    (dict(queues=0), "queues"),
    (dict(rx_queue_size=300), "rx_queue_size"),
    (dict(model="virtio; rm"), "model"),
    (dict(mac="nonsense"), "mac"),
])
def test_bad_options_name_the_field(change, field):
    with pytest.raises(ValidationError) as err:
        iface.settings_from_params(params(**change))
    assert err.value.field == field


def test_queues_need_virtio():
    root = ET.fromstring(DOMAIN)
    nic = iface.find_nic(root, "guests", "52:54:00:77:08:11")  # an rtl8139
    with pytest.raises(ValidationError, match="need model virtio"):
        iface.apply_settings(nic, iface.settings_from_params(params(mac="52:54:00:77:08:11", queues=2)))


def test_fallback_redefine_keeps_the_vnc_password():
    """A driver without device updates (libvirt's in-process test driver is one) gets the whole
    definition back, read with its secrets: the VNC password survives."""
    libvirt = pytest.importorskip("libvirt")
    conn = libvirt.open("test:///default")
    try:
        conn.defineXML(
            "<domain type='test'><name>secret</name><memory>65536</memory><os><type>hvm</type></os><devices>"
            "<interface type='network'><mac address='52:54:00:77:08:20'/><source network='default'/><model type='virtio'/></interface>"
            "<graphics type='vnc' port='-1' passwd='s3cret'/></devices></domain>"
        )
        domain = conn.lookupByName("secret")
        want = iface.settings_from_params(params(network="default", mac="52:54:00:77:08:20", queues=2))
        nic = iface.find_nic(ET.fromstring(domain.XMLDesc(iface.DOMAIN_XML_INACTIVE)), "default")
        iface.apply_settings(nic, want)
        iface.update_nic("test:///default", domain, want, ET.tostring(nic, encoding="unicode"))
        secure = ET.fromstring(domain.XMLDesc(iface.DOMAIN_XML_INACTIVE | iface.DOMAIN_XML_SECURE))
        assert secure.find("devices/graphics").get("passwd") == "s3cret"
        assert secure.find("devices/interface/driver").get("queues") == "2"
        domain.undefine()
    finally:
        conn.close()
