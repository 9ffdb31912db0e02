"""Reverse DNS names: where an address's PTR lives, its default name, what a name may be."""

from __future__ import annotations

import pytest

from instances.reverse_names import default_ptr, pointer, pool_zones, ptr_clean, zone_of


def test_an_address_has_its_ptr_in_the_zone_cut_from_its_pool():
    assert pointer("203.0.113.10") == "10.113.0.203.in-addr.arpa."
    assert zone_of("203.0.113.10", "203.0.113.0/24") == "113.0.203.in-addr.arpa."
    assert zone_of("203.0.114.7", "203.0.112.0/22") == "114.0.203.in-addr.arpa."
    assert zone_of("10.1.2.3", "10.1.0.0/16") == "1.10.in-addr.arpa."
    assert zone_of("2001:db8:100:a::25", "2001:db8:100::/48") == "0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa."


def test_a_pool_needs_a_zone_per_octet_or_nibble_boundary():
    assert pool_zones("203.0.113.0/24") == ["113.0.203.in-addr.arpa."]
    assert pool_zones("203.0.113.128/25") == ["113.0.203.in-addr.arpa."]
    assert pool_zones("203.0.112.0/22") == [
        f"{n}.0.203.in-addr.arpa." for n in (112, 113, 114, 115)
    ]
    assert pool_zones("2001:db8:100::/48") == ["0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa."]
    assert len(pool_zones("2001:db8:100::/46")) == 4


def test_the_default_name_is_the_address_under_the_default_domain(settings):
    settings.REVERSE_DNS_DEFAULT_DOMAIN = "Example-Hosting.net."
    assert default_ptr("203.0.113.10") == "203-0-113-10.example-hosting.net"
    assert default_ptr("2001:db8:100:a::1") == "2001-db8-100-a--1.example-hosting.net"


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("mail.example.com", "mail.example.com"),
        ("  Mail.Example.COM. ", "mail.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("", ""),
    ],
)
def test_a_host_name_is_kept_as_the_ptr_points_to_it(typed, kept):
    assert ptr_clean(typed) == kept


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("mail", "not a full host name"),
        ("mail..example.com", "not a valid host name"),
        ("-mail.example.com", "not a valid host name"),
        ("mail_1.example.com", "not a valid host name"),
        ("203.0.113.10", "an address, not a host name"),
        ("10.113.0.203.in-addr.arpa", "reverse DNS name itself"),
        ("a" * 64 + ".example.com", "not a valid host name"),
    ],
)
def test_it_says_what_is_wrong_with_a_name(typed, said):
    with pytest.raises(ValueError, match=said):
        ptr_clean(typed)
