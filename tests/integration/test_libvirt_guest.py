"""A real QEMU guest (TCG) on a libvirt network, and libvirt_interface on its NIC.

The guest's init (playbooks/sandbox/guest_image.py, the sandbox's builder) gets a lease, pings the
gateway, then asks the gateway for a public name every second and prints the answer on its serial
console. The host's first nameserver refuses public names, so the guest sees REFUSED until
libvirt_network sets forwarders; that restarts the network, which must re-attach the guest's tap,
after which the same running guest resolves the public and the private name.
"""

from __future__ import annotations

import time

import pytest

from guest_image import build_guest_image, domain_xml
from libvirt_lab import PRIVATE_DNS, PUBLIC_DNS, REFUSING_RESOLV_CONF, libvirt_host
from netlab import Lab

pytestmark = pytest.mark.slow

NETWORK, BRIDGE, GATEWAY = "guests", "virbr81", "10.77.8.1"
GUEST_MAC = "52:54:00:77:08:10"

# One DNS query over TCP (busybox nc has no UDP) for www.example.com A, sent once: busybox's
# nslookup retransmits after REFUSED, and dnsmasq sends a retransmission to the next upstream,
# which hides the symptom that stub resolvers trying once (dig, many appliances) show.
QUERY = r"\000\041\022\064\001\000\000\001\000\000\000\000\000\000\003www\007example\003com\000\000\001\000\001"

GUEST_SNIPPET = r"""
udhcpc -i eth0 -n -q -t 15 -T 1 -s /etc/udhcpc.sh || echo GUEST-NO-LEASE
GW=@GW@
ping -c 2 -W 2 $GW >/dev/null 2>&1 && echo GUEST-PING-OK || echo GUEST-PING-FAILED
i=0
while [ $i -lt 150 ]; do
  rc=$(printf '@QUERY@' | nc -w 3 $GW 53 | od -An -tu1 | awk 'NR==1{print $6 % 16; exit}')
  echo "GUEST-PUBLIC-RCODE=$rc"
  [ "$rc" = 0 ] && break
  sleep 1
  i=$((i+1))
done
nslookup www.example.com $GW 2>&1 | grep -q 203.0.113.80 && echo GUEST-PUBLIC-OK || echo GUEST-PUBLIC-FAILED
nslookup db.corp.example $GW 2>&1 | grep -q 10.1.2.3 && echo GUEST-PRIVATE-OK || echo GUEST-PRIVATE-FAILED
ping -c 2 -W 2 $GW >/dev/null 2>&1 && echo GUEST-PING2-OK || echo GUEST-PING2-FAILED
""".replace("@GW@", GATEWAY).replace("@QUERY@", QUERY)


@pytest.fixture(scope="module")
def hv():
    lab = Lab(tag="lvg")
    try:
        with libvirt_host(lab, resolv_conf=REFUSING_RESOLV_CONF) as (host, _upstream):
            host.module("libvirt_network", dict(
                name=NETWORK, bridge=dict(name=BRIDGE),
                ips=[dict(address=GATEWAY, prefix=24, dhcp_ranges=[dict(start="10.77.8.100", end="10.77.8.150")])],
            ))
            yield host
    finally:
        lab.close()


def define_domain(hv, name, kernel="/nonexistent/vmlinuz", initrd="/nonexistent/initrd", mac=GUEST_MAC):
    xml = domain_xml(name, kernel, initrd, NETWORK, str(hv.lab.tmp / ("%s-serial.log" % name)), mac=mac)
    hv.virsh(["define", "/dev/stdin"], input=xml)
    return hv.lab.tmp / ("%s-serial.log" % name)


def wait_for_line(log, marker, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if marker in text:
            return text
        time.sleep(0.5)
    raise AssertionError("no %r on the serial console within %ss:\n%s" % (marker, timeout, text[-3000:]))


def test_interface_tuning_of_a_stopped_guest(hv):
    define_domain(hv, "tune", mac="52:54:00:77:08:20")
    args = dict(domain="tune", network=NETWORK, model="virtio", queues=2, rx_queue_size=1024, tx_queue_size=512)
    planned = hv.module("libvirt_interface", args, check_mode=True, diff=True)
    assert planned["changed"] and "queues" not in hv.virsh(["dumpxml", "--inactive", "tune"]).stdout
    assert "rx_queue_size=\"1024\"" in planned["diff"]["after"]
    tuned = hv.module("libvirt_interface", args)
    assert tuned["changed"] and not tuned["running"] and not tuned["restart_required"]
    assert tuned["after"] == dict(mac="52:54:00:77:08:20", network=NETWORK, model="virtio", queues=2,
                                  rx_queue_size=1024, tx_queue_size=512)
    assert "<driver queues='2' rx_queue_size='1024' tx_queue_size='512'/>" in hv.virsh(["dumpxml", "--inactive", "tune"]).stdout
    assert not hv.module("libvirt_interface", args)["changed"]
    wrong = hv.module("libvirt_interface", dict(args, network="elsewhere"), expect_fail=True)
    assert "no NIC on network elsewhere" in wrong["msg"]
    bad = hv.module("libvirt_interface", dict(args, queues=0), expect_fail=True)
    assert "queues" in bad["msg"]
    hv.virsh(["undefine", "tune"])


def test_qemu_guest_lease_ping_dns_and_forwarders_fix_while_it_runs(hv):
    kernel, initrd = build_guest_image(init_snippet=GUEST_SNIPPET)
    log = define_domain(hv, "vm1", str(kernel), str(initrd))
    tuned = hv.module("libvirt_interface", dict(domain="vm1", network=NETWORK, model="virtio", rx_queue_size=1024))
    assert tuned["changed"] and not tuned["restart_required"]
    started = time.monotonic()
    hv.virsh(["start", "vm1"])
    text = wait_for_line(log, "GUEST-PUBLIC-RCODE=5", 120)  # 5: REFUSED, the baseline
    lease_seconds = time.monotonic() - started
    assert "GUEST-LEASE ip=10.77.8." in text and "GUEST-PING-OK" in text, text[-2000:]
    print("QEMU guest: lease, ping and first DNS answer after %.1f s" % lease_seconds)

    running = hv.module("libvirt_interface", dict(domain="vm1", network=NETWORK, rx_queue_size=512))
    assert running["running"] and running["restart_required"] and running["tap"]
    assert isinstance(running["tap_tx_dropped"], int)
    tap = running["tap"]

    fixed = hv.module("libvirt_network", dict(
        name=NETWORK, dns=dict(forwarders=[dict(domain="corp.example", addr=PRIVATE_DNS), dict(addr=PUBLIC_DNS)]),
    ))
    assert fixed["restarted"] and fixed["reattached"] == [tap]
    assert hv.bridge_ports(BRIDGE) == [tap]
    text = wait_for_line(log, "GUEST-DONE", 120)
    assert "GUEST-PUBLIC-RCODE=0" in text and "GUEST-PUBLIC-OK" in text and "GUEST-PRIVATE-OK" in text and "GUEST-PING2-OK" in text, text[-2000:]
    print("QEMU guest: resolved the public name %.1f s after start" % (time.monotonic() - started))
