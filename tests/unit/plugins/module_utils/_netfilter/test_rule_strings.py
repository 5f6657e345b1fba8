"""Strings on their way into nft scripts and iptables-restore files, and iptables-save lines on
their way back (issue 11 items 3 and 10): one check, one quoting per backend, one splitter."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import nft
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as ir
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

ESCAPE = 'x";drop;#'


@pytest.mark.parametrize("fields, field", [
    ({"iif": ESCAPE}, "in_interface"),
    ({"oif": ESCAPE}, "out_interface"),
    ({"comment": 'a" accept'}, "comment"),
])
def test_renderers_refuse_a_string_that_would_break_out(fields, field):
    """The model refuses these already; the renderers check again, so a Rule made some other way
    cannot smuggle a verdict into a script either."""
    rule = ir.Rule(chain=ir.POSTROUTING, family=4, action=ir.MASQUERADE, saddr=("10.0.0.0/24",), **fields)
    with pytest.raises(ValidationError) as caught:
        nft.render_rule(rule)
    assert caught.value.field == field
    with pytest.raises(ValidationError) as caught:
        ipt.render_lines("masquerade", 4, [rule])
    assert caught.value.field == field


def test_nft_strings_are_quoted_in_place():
    rule = ir.Rule(chain=ir.POSTROUTING, family=4, action=ir.MASQUERADE, oif="up;link#1", saddr=("10.0.0.0/24",),
                   comment="guest's; {net} #2")
    assert nft.render_rule(rule) == 'oifname "up;link#1" ip saddr 10.0.0.0/24 masquerade comment "guest\'s; {net} #2"'


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00")))
def test_iptables_quote_and_split_line_round_trip(text):
    tokens, complete = nf.split_line("-A X %s -j ACCEPT" % ipt.quote(text))
    assert complete
    assert tokens == ["-A", "X", text, "-j", "ACCEPT"]


def test_split_line_reads_like_iptables_restore():
    assert nf.split_line('-A F -m comment --comment "a \\"b\\" \\\\c" -j ACCEPT') == (
        ["-A", "F", "-m", "comment", "--comment", 'a "b" \\c', "-j", "ACCEPT"], True)
    assert nf.split_line("-A F -i a\\b -j DROP") == (["-A", "F", "-i", "a\\b", "-j", "DROP"], True)
    assert nf.split_line('-A F -i a"b -j DROP') == (["-A", "F", "-i", "ab -j DROP"], False)


FOREIGN_SAVE = '''*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -i a"b -j DROP
-A FORWARD -i a'b -m comment --comment "q\\"\\\\x" -j DROP
-A FORWARD -s 10.0.0.0/24 -j ACCEPT
COMMIT
'''


def test_another_tools_rule_with_a_quote_in_an_interface_name_is_read_tolerantly():
    """Captured from iptables-save 1.8.9 after `iptables -A FORWARD -i 'a"b' -j DROP` and
    `-i "a'b"`: the quote is printed bare. shlex raised "No closing quotation" on it."""
    chains = nf.chains_from_save(FOREIGN_SAVE, "ip", "nft")
    rules = chains[("ip", "filter", "FORWARD")]["rules"]
    assert [r["verdict"] for r in rules] == ["unknown", "drop", "accept"]
    assert rules[0]["matches"] == [("unknown", False, ["not parsed"])]
    assert rules[1]["matches"] == [("iif", False, ["a'b"])]
    # The walk does not trust what it could not read: a drop behind it is a doubt, not a pass.
    packet = {"nfproto": "ipv4", "iif": "eth0", "oif": "br0", "saddr": None, "daddr": "10.0.0.5",
              "proto": "tcp", "sport": None, "dport": 80, "ct": ["new", "dnat"]}
    verdicts = nf.forward_verdicts(chains, packet)
    assert verdicts[0]["doubts"]


def test_our_chain_with_an_unterminated_quote_is_drift_not_a_crash():
    text = '*filter\n:HNET-PF-FORWARD - [0:0]\n-A FORWARD -j HNET-PF-FORWARD\n-A HNET-PF-FORWARD -i a"b -j ACCEPT\nCOMMIT\n'
    rules, jumps = ipt.parse_save("port_forward", 4, text)
    assert jumps == {("filter", "FORWARD", "HNET-PF-FORWARD")}
    assert [r.action for r in rules] == ["unknown"]


def test_a_hand_edited_rule_with_a_string_we_refuse_is_drift_and_shows_in_a_diff():
    """Our table or chain edited by hand with a quote in an interface name: read back as a rule we
    did not write (so the plan rewrites it), and shown in the diff without breaking out or failing
    (the iptables renderer raised KeyError on such a rule before)."""
    document = {"nftables": [
        {"table": {"family": "inet", "name": "hypervisor_network_masquerade"}},
        {"rule": {"family": "inet", "table": "hypervisor_network_masquerade", "chain": "postrouting", "handle": 4,
                  "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": 'x";drop;#'}},
                           {"masquerade": None}]}},
    ]}
    _exists, read = nft.parse_table(document, "hypervisor_network_masquerade")
    assert [r.action for r in read] == ["unknown"]
    assert ir.decompile_masquerades(read) == ([], read)
    assert nft.render_rule(read[0]) == "# not understood, to be replaced: handle 4"
    save = '*nat\n:HNET-MASQ-POSTROUTING - [0:0]\n-A HNET-MASQ-POSTROUTING -o "x\\";drop" -s 10.0.0.0/24 -j MASQUERADE\nCOMMIT\n'
    read, _jumps = ipt.parse_save("masquerade", 4, save)
    assert [r.action for r in read] == ["unknown"]
    shown = ipt.render_lines("masquerade", 4, read)[("nat", "HNET-MASQ-POSTROUTING")]
    assert shown == ['# not understood, to be replaced: -o x";drop -s 10.0.0.0/24 -j MASQUERADE']


_OCTET_TEXT = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "007", "", "٣", "²", "-1", "+1", " 1"]))


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.integers(0, 2 ** 32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.lists(_OCTET_TEXT, min_size=3, max_size=5).map(".".join),
))
def test_addresses_read_back_are_normalised_as_ipaddress_does(text):
    """ir.plain_ipv4 lets the read-back skip ipaddress for addresses nft prints in their normal
    form; whatever the text, the result is ipaddress's (or its refusal)."""
    ir._net_text.cache_clear()
    ir._address_text.cache_clear()
    for ours, theirs in ((ir._address_text, lambda t: str(ipaddress.ip_address(t))),
                         (ir._net_text, lambda t: str(ipaddress.ip_network(t, strict=False)))):
        try:
            expected = theirs(text)
        except ValueError:
            with pytest.raises(ValueError):
                ours(text)
        else:
            assert ours(text) == expected
    assert ir.plain_ipv4(text) == (text.count(".") == 3 and _is_normal(text))
    if ir.plain_ipv4(text):
        assert nft._compact(text + "/32") == text


def _is_normal(text):
    try:
        return str(ipaddress.IPv4Address(text)) == text
    except ValueError:
        return False
