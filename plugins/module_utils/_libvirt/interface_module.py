# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_interface: virtio model and queue tuning of one guest NIC in the persistent definition.

Pure part: validate the options, find the NIC in the domain XML, compute the new XML. Only that one
<interface> goes back to libvirt (virDomainUpdateDeviceFlags with AFFECT_CONFIG), so the rest of
the domain, its VNC/SPICE passwords above all, never passes through this module; a running guest
picks the change up at its next start. Drivers without device updates get the whole definition,
read with its secrets (INACTIVE|SECURE, as `virsh edit` does), with only this NIC changed.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from typing import Optional

from ansible_collections.hypervisor.network.plugins.module_utils._libvirt import conn as conn_util
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError, ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_model import mac_address
from ansible_collections.hypervisor.network.plugins.module_utils._libvirt.network_xml import to_text
from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

# Keep the prefixes of namespaced metadata readable when the domain is written back.
for _prefix, _uri in (("qemu", "http://libvirt.org/schemas/domain/qemu/1.0"),):
    ET.register_namespace(_prefix, _uri)

_MODEL = re.compile(r"^[A-Za-z0-9_-]{1,32}\Z")
QUEUE_SIZES = (256, 512, 1024)  # what QEMU's virtio-net accepts
DOMAIN_XML_SECURE, DOMAIN_XML_INACTIVE = 1, 2
AFFECT_CONFIG = 2
# libvirt's codes for "this driver cannot update a device": then the whole definition is redefined
NO_DEVICE_UPDATE = (3, 74, 84)  # VIR_ERR_NO_SUPPORT, VIR_ERR_ARGUMENT_UNSUPPORTED, VIR_ERR_OPERATION_UNSUPPORTED
DRIVER_ATTRS = ("queues", "rx_queue_size", "tx_queue_size")

ARGUMENT_SPEC = dict(
    uri=dict(type="str", default="qemu:///system"),
    domain=dict(type="str", required=True),
    network=dict(type="str", required=True),
    mac=dict(type="str"),
    model=dict(type="str"),
    queues=dict(type="int"),
    rx_queue_size=dict(type="int", choices=list(QUEUE_SIZES)),
    tx_queue_size=dict(type="int", choices=list(QUEUE_SIZES)),
)


@dataclasses.dataclass(frozen=True)
class NicSettings:
    mac: Optional[str] = None
    network: Optional[str] = None
    model: Optional[str] = None
    queues: Optional[int] = None
    rx_queue_size: Optional[int] = None
    tx_queue_size: Optional[int] = None


def settings_from_params(params):
    model = params.get("model")
    if model is not None and not _MODEL.match(model):
        raise ValidationError("model", model, "a NIC model is a word such as virtio, e1000e or rtl8139")
    queues = params.get("queues")
    if queues is not None and not 1 <= queues <= 256:
        raise ValidationError("queues", queues, "must be from 1 to 256")
    for field in ("rx_queue_size", "tx_queue_size"):
        if params.get(field) is not None and params[field] not in QUEUE_SIZES:
            raise ValidationError(field, params[field], "must be one of %s" % ", ".join(map(str, QUEUE_SIZES)))
    return NicSettings(
        mac=mac_address("mac", params["mac"]) if params.get("mac") else None,
        network=params["network"],
        model=model,
        queues=queues,
        rx_queue_size=params.get("rx_queue_size"),
        tx_queue_size=params.get("tx_queue_size"),
    )


def _nic_mac(nic):
    element = nic.find("mac")
    return element.get("address").lower() if element is not None and element.get("address") else None


def find_nic(root, network, mac=None):
    """The one <interface type='network'> on ``network`` (and with ``mac``, if given)."""
    nics = [n for n in root.findall("devices/interface") if n.get("type") == "network" and n.find("source") is not None
            and n.find("source").get("network") == network]
    if mac is not None:
        nics = [n for n in nics if _nic_mac(n) == mac]
    if len(nics) != 1:
        found = ", ".join(_nic_mac(n) or "?" for n in nics) or "none"
        raise HypervisorNetworkError(
            "domain %s has %s NIC on network %s%s (found: %s); %s"
            % (root.findtext("name"), "no" if not nics else "more than one", network, " with MAC %s" % mac if mac else "",
               found, "set mac to choose one" if nics else "attach one first (virsh attach-interface --config)")
        )
    return nics[0]


def read_nic(nic):
    model, driver = nic.find("model"), nic.find("driver")

    def get(key):
        return int(driver.get(key)) if driver is not None and driver.get(key) else None

    source = nic.find("source")
    return NicSettings(
        mac=_nic_mac(nic),
        network=source.get("network") if source is not None else None,
        model=model.get("type") if model is not None else None,
        queues=get("queues"),
        rx_queue_size=get("rx_queue_size"),
        tx_queue_size=get("tx_queue_size"),
    )


def apply_settings(nic, want: NicSettings):
    """Change ``nic`` in place to carry ``want`` (options left None are kept)."""
    if want.model is not None:
        model = nic.find("model")
        if model is None:
            model = ET.SubElement(nic, "model")
        model.set("type", want.model)
    values = {k: getattr(want, k) for k in DRIVER_ATTRS if getattr(want, k) is not None}
    if values:
        driver = nic.find("driver")
        if driver is None:
            driver = ET.SubElement(nic, "driver")
        for key, value in values.items():
            driver.set(key, str(value))
    effective = read_nic(nic)
    if effective.model != "virtio" and any(getattr(effective, k) for k in DRIVER_ATTRS):
        raise ValidationError("model", effective.model, "queues and queue sizes need model virtio")


def _tx_dropped(tap):
    """Packets the host dropped towards the guest on its tap: the usual cause of intermittent DNS
    timeouts that larger queues (or more of them) fix."""
    if not tap:
        return None
    try:
        with open("/sys/class/net/%s/statistics/tx_dropped" % tap) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def update_nic(uri, domain, want, nic_xml):
    """Write the changed NIC into the persistent definition, and nothing else of the domain."""
    try:
        domain.updateDeviceFlags(nic_xml, AFFECT_CONFIG)
        return
    except conn_util.libvirt.libvirtError as exc:
        if exc.get_error_code() not in NO_DEVICE_UPDATE:
            raise HypervisorNetworkError("libvirt at %s: updating the interface of domain %s failed: %s"
                                         % (uri, domain.name(), exc.get_error_message()), uri=uri)
    with conn_util.libvirt_errors(uri, "redefining domain %s" % domain.name()):
        root = ET.fromstring(domain.XMLDesc(DOMAIN_XML_INACTIVE | DOMAIN_XML_SECURE))
        apply_settings(find_nic(root, want.network, read_nic(ET.fromstring(nic_xml)).mac), want)
        domain.connect().defineXML(to_text(root))


def run(module):
    """Gather, compare, define: the whole libvirt_interface run. Returns the result dict."""
    params = module.params
    runner = Runner(module)
    want = settings_from_params(params)
    uri = params["uri"]
    conn = conn_util.connect(uri)
    try:
        return _tune(module, params, runner, conn, want, uri)
    finally:
        conn.close()


def _tune(module, params, runner, conn, want, uri):
    # One lock over read -> compare -> write: a second task tuning the same NIC meanwhile would
    # otherwise have its change overwritten by a copy read before it.
    with host_lock():
        with conn_util.libvirt_errors(uri, "looking up domain %s" % params["domain"]):
            domain = conn.lookupByName(params["domain"])
            root = ET.fromstring(domain.XMLDesc(DOMAIN_XML_INACTIVE))
            running = bool(domain.isActive())
            live_root = ET.fromstring(domain.XMLDesc(0)) if running else None
        nic = find_nic(root, want.network, want.mac)
        before_xml, before = to_text(nic), read_nic(nic)
        apply_settings(nic, want)
        after_xml, after = to_text(nic), read_nic(nic)
        changed = before != after
        if changed:
            shown = "virsh update-device %s /dev/stdin --config <<'XML'  # interface %s\n%s\nXML" % (params["domain"], after.mac, after_xml)
            runner.call(shown, update_nic, uri, domain, want, after_xml)
    tap, live = None, None
    if running:
        live_nic = find_nic(live_root, want.network, after.mac)
        live = read_nic(live_nic)
        target = live_nic.find("target")
        tap = target.get("dev") if target is not None else None
    tuned = ("model",) + DRIVER_ATTRS
    return build_result(
        module, changed, runner.commands, dataclasses.asdict(before), after=dataclasses.asdict(after),
        diff=dict(before=before_xml + "\n", after=after_xml + "\n"),
        running=running,
        # the running guest keeps its old NIC until it is shut down and started again
        restart_required=bool(running and any(getattr(after, k) is not None and getattr(live, k) != getattr(after, k) for k in tuned)),
        tap=tap,
        tap_tx_dropped=_tx_dropped(tap),
    )
