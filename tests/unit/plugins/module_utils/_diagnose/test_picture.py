"""The SVG picture of a diagnose result: valid SVG, one element per thing drawn, coloured by status."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.model import finding
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.picture import STROKE, render

NS = {"svg": "http://www.w3.org/2000/svg"}

RESULT = {
    "uplink": "eth0",
    "networks": [
        {"name": "default", "source": "libvirt", "bridge": "virbr0", "active": True, "forward_mode": "nat",
         "addresses": ["192.168.122.1/24"], "ports": ["vnet0", "vnet1"],
         "guests": [{"mac": "52:54:00:00:00:10", "ip": "192.168.122.10", "name": "web"},
                    {"mac": "52:54:00:00:00:11", "ip": "192.168.122.11", "hostname": None}],
         "forwarders": [{"domain": "corp.example", "addr": "198.51.100.53"}, {"domain": None, "addr": "203.0.113.53"}]},
        {"name": "br0", "source": "host", "bridge": "br0", "active": True, "forward_mode": None,
         "addresses": [], "ports": [], "guests": [], "forwarders": []},
    ],
    "port_forwards": [{"protocol": "tcp", "host_port": 8080, "destination": "192.168.122.10", "destination_port": 80},
                      {"protocol": "udp", "host_port": 5353, "destination": "10.9.9.9", "destination_port": 53}],
    "findings": [
        finding("ip_forward", "ok", "ipv4", "on"),
        finding("nameservers", "fail", "198.51.100.53", "REFUSED first <script>"),
        finding("bridge_up", "ok", "virbr0 (default)", "up"),
        finding("masquerade", "ok", "192.168.122.0/24 (default)", "in place"),
        finding("tap_drops", "warn", "vnet1 on virbr0", "drops"),
        finding("forward_path", "fail", "tcp/8080 -> 192.168.122.10:80", "rejected"),
        finding("bridge_ports", "warn", "br0", "no ports"),
    ],
}


def parse(svg):
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def groups(root, kind):
    return [g for g in root.iter("{http://www.w3.org/2000/svg}g") if (g.get("class") or "").split()[:1] == [kind]]


def test_the_picture_is_svg_with_an_element_per_thing():
    root = parse(render(RESULT, "hv1"))
    assert len(groups(root, "uplink")) == 1
    assert len(groups(root, "network")) == 2
    assert len(groups(root, "port")) == 2
    assert len(groups(root, "guest")) == 3  # two guests, and the forward to an address no guest has
    assert len(groups(root, "link")) == 4  # network -> each port and each guest
    assert len(groups(root, "path")) == 1  # uplink -> the NAT network (br0 forwards nothing)
    assert len(groups(root, "forward")) == 2
    assert len(root.findall(".//svg:rect", NS)) == 1 + 2 + 2 + 3
    width, height = int(root.get("width")), int(root.get("height"))
    assert root.get("viewBox") == "0 0 %d %d" % (width, height)
    for rect in root.findall(".//svg:rect", NS):
        assert int(rect.get("y")) + int(rect.get("height")) <= height and int(rect.get("x")) + int(rect.get("width")) <= width


def test_each_element_takes_the_colour_of_its_worst_finding():
    root = parse(render(RESULT, "hv1"))
    (uplink,) = groups(root, "uplink")
    assert uplink.get("class") == "uplink fail" and uplink.find("svg:rect", NS).get("stroke") == STROKE["fail"]
    networks = {g.find("svg:text", NS).text: g.get("class") for g in groups(root, "network")}
    assert networks == {"virbr0 (default)": "network ok", "br0": "network warn"}
    ports = {g.find("svg:text", NS).text: g.get("class") for g in groups(root, "port")}
    assert ports == {"vnet0": "port none", "vnet1": "port warn"}
    forwards = sorted(g.get("class") for g in groups(root, "forward"))
    assert forwards == ["forward fail", "forward ok"]


def test_text_is_escaped_and_nothing_active_is_drawn():
    svg = render(RESULT, "hv<1>")
    assert "<script" not in svg and "&lt;script&gt;" in svg and "hv&lt;1&gt;" in svg
    texts = [t.text for t in parse(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert "DNS corp.example -> 198.51.100.53" in texts and "DNS * -> 203.0.113.53" in texts
    assert "192.168.122.11 52:54:00:00:00:11" in texts and "tcp/8080 -> 192.168.122.10:80" in texts


def test_an_empty_host_still_draws_its_uplink():
    root = parse(render({"findings": [], "networks": []}))
    assert len(groups(root, "uplink")) == 1 and not groups(root, "network")


def test_a_bridge_does_not_take_the_findings_of_a_bridge_whose_name_contains_it():
    result = dict(RESULT, findings=[finding("bridge_mtu", "fail", "virbr0 (default)", "mtu"),
                                    finding("dnsmasq_listening", "warn", "10.0.0.1:53/udp (br0)", "nothing")])
    networks = {g.find("svg:text", NS).text: g.get("class") for g in groups(parse(render(result)), "network")}
    assert networks == {"virbr0 (default)": "network fail", "br0": "network warn"}


def test_inline_for_html_names_no_url():
    svg = render(RESULT, "hv1", standalone=False)
    assert "http" not in svg and ET.fromstring(svg).tag == "svg"
