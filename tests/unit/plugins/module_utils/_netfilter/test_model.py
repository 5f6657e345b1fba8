"""The pure part of masquerade / port_forward: validation, state vocabulary, conflicts."""

from __future__ import annotations

import pytest
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError


def forward(raw, base=None, connected=()):
    return model.complete_port_forward("config[0]", model.parse_port_forward(0, raw), base, connected)


def desired(state, raws, have):
    partials = [model.parse_port_forward(i, r) for i, r in enumerate(raws)]
    return model.desired_items(
        state, partials, have, model.port_forward_key,
        lambda i, p, b: model.complete_port_forward("config[%d]" % i, p, b, ()),
    )


WEB = {"host_port": "8080", "destination": "10.0.0.2", "destination_port": "80"}
SSH = {"host_port": "2222", "destination": "10.0.0.3", "destination_port": "22"}


def test_defaults_and_normalisation():
    fwd = forward({"host_port": 80, "destination": "10.0.0.2", "allowed_sources": ["198.51.100.7", "10.1.0.0/16"]})
    assert fwd.protocol == "tcp" and fwd.host_port == (80, 80) and fwd.destination_port == (80, 80)
    assert fwd.allowed_sources == ("10.1.0.0/16", "198.51.100.7/32")
    assert fwd.hairpin is False and fwd.hairpin_sources == ()


def test_hairpin_sources_default_to_the_connected_subnet_of_the_destination():
    import ipaddress

    nets = [ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("10.0.0.0/24")]
    assert forward(dict(WEB, hairpin=True), connected=nets).hairpin_sources == ("10.0.0.0/24",)
    with pytest.raises(ValidationError, match=r"config\[0\]\.hairpin.*hairpin_sources"):
        forward(dict(WEB, destination="10.9.0.2", hairpin=True), connected=nets)


@pytest.mark.parametrize("raw, field, words", [
    ({"host_port": "0", "destination": "10.0.0.2"}, "config[0].host_port", "1 to 65535"),
    ({"host_port": "70000", "destination": "10.0.0.2"}, "config[0].host_port", "1 to 65535"),
    ({"host_port": "90-80", "destination": "10.0.0.2"}, "config[0].host_port", "reversed"),
    ({"host_port": "http", "destination": "10.0.0.2"}, "config[0].host_port", "a port is a number"),
    ({"host_port": "80", "destination": "10.0.0.256"}, "config[0].destination", "not an IPv4 or IPv6 address"),
    ({"host_port": "80", "destination": "10.0.0.2", "host_address": "2001:db8::1"}, "config[0].host_address", "same IP version"),
    ({"host_port": "80", "destination": "10.0.0.2", "allowed_sources": ["fd00::/8"]}, "config[0].allowed_sources[0]", "same IP version"),
    ({"host_port": "80", "destination": "10.0.0.2", "in_interface": "x" * 16}, "config[0].in_interface", "15 bytes"),
    ({"host_port": "80", "destination": "10.0.0.2", "in_interface": "a b"}, "config[0].in_interface", "white space"),
    ({"host_port": "80", "destination": "10.0.0.2", "comment": 'a"b'}, "config[0].comment", "double quotes"),
    ({"host_port": "80", "destination": "10.0.0.2", "comment": "a\\b"}, "config[0].comment", "backslashes"),
    ({"host_port": "80", "destination": "10.0.0.2", "comment": "a\nb"}, "config[0].comment", "newlines"),
    ({"host_port": "80", "destination": "10.0.0.2", "comment": "x" * 129}, "config[0].comment", "128 bytes"),
    ({"host_port": "80", "protocol": "sctp", "destination": "10.0.0.2"}, "config[0].protocol", "tcp, udp, both"),
    ({"host_port": "80-81", "destination": "10.0.0.2", "destination_port": "90-99"}, "config[0].destination_port", "as long as"),
    ({"host_port": "80"}, "config[0].destination", "required"),
    # issue 11 item 3: a string that would break out of its place in a rule is refused
    ({"host_port": "80", "destination": "10.0.0.2", "in_interface": 'x";drop;#'}, "config[0].in_interface", "double quotes"),
    ({"host_port": "80", "destination": "10.0.0.2", "in_interface": "x\\y"}, "config[0].in_interface", "backslashes"),
    ({"host_port": "80", "destination": "10.0.0.2", "in_interface": "eth+"}, "config[0].in_interface", "wildcard"),
    ({"host_port": "80", "destination": "10.0.0.2", "in_interface": "eth*"}, "config[0].in_interface", "wildcard"),
    # issue 11 item 10: destinations that are no guest, hairpin sources of the other family
    ({"host_port": "80", "destination": "0.0.0.0"}, "config[0].destination", "unicast"),
    ({"host_port": "80", "destination": "::"}, "config[0].destination", "unicast"),
    ({"host_port": "80", "destination": "224.0.0.5"}, "config[0].destination", "multicast"),
    ({"host_port": "80", "destination": "ff02::1"}, "config[0].destination", "multicast"),
    ({"host_port": "80", "destination": "127.0.0.1"}, "config[0].destination", "loopback"),
    ({"host_port": "80", "destination": "::1"}, "config[0].destination", "loopback"),
    ({"host_port": "80", "destination": "255.255.255.255"}, "config[0].destination", "broadcast"),
    ({"host_port": "80", "destination": "10.0.0.2", "hairpin": True, "hairpin_sources": ["fd00::/64"]},
     "config[0].hairpin_sources", "same IP version as destination 10.0.0.2"),
    ({"host_port": "80", "destination": "fd00::2", "hairpin": True, "hairpin_sources": ["fd00::/64", "10.0.0.0/24"]},
     "config[0].hairpin_sources", "same IP version as destination fd00::2"),
])
def test_bad_forward_input_names_field_and_value(raw, field, words):
    with pytest.raises(ValidationError) as caught:
        forward(raw)
    assert caught.value.field == field
    assert field in caught.value.msg and words in caught.value.msg


@pytest.mark.parametrize("raw, field, words", [
    ({"source": "10.0.0.1/24"}, "config[0].source", "host bits are set; did you mean 10.0.0.0/24"),
    ({"source": "10.0.0.0/33"}, "config[0].source", "CIDR"),
    ({"source": "10.0.0.0/24", "out_interface": "../x"}, "config[0].out_interface", "'/'"),
    ({"source": "10.0.0.0/24", "out_interface": 'x";drop;#'}, "config[0].out_interface", "double quotes"),
    ({"source": "10.0.0.0/24", "out_interface": "wan+"}, "config[0].out_interface", "wildcard"),
    ({"source": "0.0.0.0/0"}, "config[0].source", "every source"),
    ({"source": "::/0"}, "config[0].source", "every source"),
])
def test_bad_masquerade_input(raw, field, words):
    with pytest.raises(ValidationError) as caught:
        model.parse_masquerade(0, raw)
    assert caught.value.field == field
    assert field in caught.value.msg and words in caught.value.msg


def test_merged_updates_listed_fields_and_unites_allowlists():
    have = [forward(dict(WEB, allowed_sources=["198.51.100.0/24"], comment="web")), forward(SSH)]
    result = desired("merged", [{"host_port": "8080", "allowed_sources": ["203.0.113.0/24"]}], have)
    web = [f for f in result if f.host_port == (8080, 8080)][0]
    assert web.allowed_sources == ("198.51.100.0/24", "203.0.113.0/24")
    assert web.comment == "web" and web.destination == "10.0.0.2"
    assert len(result) == 2


def test_replaced_replaces_whole_item_and_keeps_others():
    have = [forward(dict(WEB, comment="web")), forward(SSH)]
    result = desired("replaced", [{"host_port": "8080", "destination": "10.0.0.9"}], have)
    web = [f for f in result if f.host_port == (8080, 8080)][0]
    assert (web.destination, web.destination_port, web.comment) == ("10.0.0.9", (8080, 8080), None)
    assert len(result) == 2


def test_overridden_keeps_only_listed():
    have = [forward(WEB), forward(SSH)]
    assert desired("overridden", [SSH], have) == [forward(SSH)]
    assert desired("overridden", [], have) == []


def test_deleted_by_key_or_everything():
    have = [forward(WEB), forward(SSH)]
    assert desired("deleted", [{"host_port": "8080"}], have) == [forward(SSH)]
    assert desired("deleted", [], have) == []


def test_conflicting_destinations_are_refused_and_duplicates_are_not():
    same = [forward(WEB), forward(dict(WEB, protocol="both"))]
    model.check_conflicts(same)
    with pytest.raises(ValidationError, match=r"config\[1\]\.host_port.*already forwarded to 10\.0\.0\.2:80 by config\[0\]"):
        model.check_conflicts([forward(WEB), forward({"host_port": "8000-8100", "destination": "10.0.0.5"})])
    # Different host addresses or protocols do not collide.
    model.check_conflicts([forward(WEB), forward(dict(WEB, destination="10.0.0.5", protocol="udp"))])
    model.check_conflicts([forward(dict(WEB, host_address="203.0.113.1")), forward(dict(WEB, host_address="203.0.113.2", destination="10.0.0.5"))])


def test_forwards_that_catch_the_same_packets_must_be_one_forward_given_twice():
    """A ``both`` forward and a udp forward of the same port and target with their own sources:
    iptables saves their udp rules as lines that read back as one rule, so the next run could not
    tell them apart. Refused, naming the field that differs; the same forward given twice is not."""
    both = forward(dict(WEB, protocol="both", allowed_sources=["198.51.100.0/24"]))
    udp = forward(dict(WEB, protocol="udp", allowed_sources=["203.0.113.7"]))
    with pytest.raises(ValidationError, match=r"config\[1\]\.allowed_sources: \['203\.0\.113\.7/32'\] is not valid: udp port 8080 "
                                              r"is already forwarded to the same target by config\[0\] with allowed_sources \['198\.51\.100\.0/24'\]"):
        model.check_conflicts([both, udp])
    with pytest.raises(ValidationError, match=r"config\[1\]\.hairpin: True"):
        model.check_conflicts([both, forward(dict(WEB, allowed_sources=["198.51.100.0/24"], hairpin=True, hairpin_sources=["10.0.0.0/24"]))])
    model.check_conflicts([both, forward(dict(WEB, protocol="udp", allowed_sources=["198.51.100.0/24"]))])


def test_a_conflict_names_the_forwards_by_their_place_in_the_config_not_in_the_sorted_set():
    """The desired set is sorted by key and holds the forwards already in place: the error names
    the config entry the user wrote and calls a forward read from the host what it is."""
    placed = forward(dict(WEB, protocol="both"))
    given = forward(dict(WEB, host_port="8000-8100", destination="10.0.0.5"))
    names = {given.key: 0}
    for order in ([placed, given], [given, placed]):
        with pytest.raises(ValidationError, match=r"^config\[0\]\.host_port: '8000-8100' is not valid: tcp port 8080 is already "
                                                  r"forwarded to 10\.0\.0\.2:80 by the forward already in place for both port 8080$"):
            model.check_conflicts(order, names)


def test_returned_items_leave_out_what_is_unset_and_are_valid_config_again():
    fwd = forward(dict(WEB, allowed_sources=["198.51.100.0/24"]))
    as_dict = fwd.to_dict()
    assert as_dict == {"protocol": "tcp", "host_port": "8080", "destination": "10.0.0.2", "destination_port": "80",
                       "allowed_sources": ["198.51.100.0/24"], "hairpin": False}
    assert forward(as_dict) == fwd
    masq = model.complete_masquerade(model.parse_masquerade(0, {"source": "10.0.0.0/24"}))
    assert masq.to_dict() == {"source": "10.0.0.0/24", "exclude_own_subnet": True}


def test_merged_sources_must_match_the_family_of_the_forward_on_the_host():
    """The destination comes from the forward already there: the family check still applies."""
    have = [forward(WEB)]
    for field in ("allowed_sources", "hairpin_sources"):
        with pytest.raises(ValidationError) as caught:
            desired("merged", [{"host_port": "8080", "hairpin": field == "hairpin_sources", field: ["fd00::/64"]}], have)
        assert caught.value.field == "config[0].%s" % field and "10.0.0.2" in caught.value.msg
