"""The PowerDNS wrapper (instances/powerdns.py) against a real pdns_server: zones, record sets,
and errors that say whether waiting helps."""

from __future__ import annotations

import socket
import threading

import pytest

from instances.powerdns import PowerDns, PowerDnsError, ZoneMissing

ZONE = "113.0.203.in-addr.arpa."


@pytest.fixture
def api(powerdns):
    powerdns.api.zone_create(ZONE, nameservers=["ns1.example-hosting.net"])
    return powerdns.api


def test_it_creates_a_zone_once_and_says_when_it_was_there(powerdns):
    assert powerdns.api.zone_create(ZONE, nameservers=["ns1.example-hosting.net"]) is True
    assert powerdns.api.zone_create(ZONE, nameservers=["ns1.example-hosting.net"]) is False
    assert powerdns.api.zone_exists(ZONE)
    assert not powerdns.api.zone_exists("114.0.203.in-addr.arpa.")


def test_a_replaced_ptr_is_served_over_dns_and_read_back_through_the_api(api, powerdns):
    api.records_replace(ZONE, "10.113.0.203.in-addr.arpa", "PTR", ["mail.example.com."], ttl=60)

    assert api.records(ZONE, "10.113.0.203.in-addr.arpa.", "PTR") == ["mail.example.com."]
    assert powerdns.ptr("203.0.113.10") == "mail.example.com."

    api.records_replace(ZONE, "10.113.0.203.in-addr.arpa.", "PTR", ["web.example.com."], ttl=60)
    assert powerdns.ptr("203.0.113.10") == "web.example.com."


def test_a_deleted_ptr_is_gone_and_deleting_it_again_is_harmless(api, powerdns):
    api.records_replace(ZONE, "10.113.0.203.in-addr.arpa.", "PTR", ["mail.example.com."], ttl=60)
    api.records_delete(ZONE, "10.113.0.203.in-addr.arpa.", "PTR")
    api.records_delete(ZONE, "10.113.0.203.in-addr.arpa.", "PTR")

    assert api.records(ZONE, "10.113.0.203.in-addr.arpa.", "PTR") == []
    assert powerdns.ptr("203.0.113.10") is None


def test_a_missing_zone_is_a_permanent_error_of_its_own(powerdns):
    with pytest.raises(ZoneMissing) as raised:
        powerdns.api.records_delete("9.0.203.in-addr.arpa.", "1.9.0.203.in-addr.arpa.", "PTR")
    assert not raised.value.transient
    assert "9.0.203.in-addr.arpa." in raised.value.message


def test_a_record_powerdns_refuses_is_permanent_with_its_words(api):
    with pytest.raises(PowerDnsError) as raised:
        api.records_replace(ZONE, "10.114.0.203.in-addr.arpa.", "PTR", ["a.example."], ttl=60)
    assert raised.value.status == 422
    assert not raised.value.transient
    assert "out of zone" in raised.value.message


def test_a_wrong_api_key_is_permanent(powerdns_server, powerdns):
    client = PowerDns(powerdns_server.api_url, "not-the-key")
    with pytest.raises(PowerDnsError) as raised:
        client.zone_create(ZONE, nameservers=["ns1.example-hosting.net"])
    assert raised.value.status == 401
    assert not raised.value.transient


def test_a_server_that_is_down_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens there once it is closed
    client = PowerDns(f"http://127.0.0.1:{port}", "key", timeout=1)
    with pytest.raises(PowerDnsError) as raised:
        client.zone_exists(ZONE)
    assert raised.value.transient
    assert "could not be reached" in raised.value.message


def test_a_server_that_never_answers_is_transient_after_the_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        client = PowerDns(f"http://127.0.0.1:{listener.getsockname()[1]}", "key", timeout=0.3)
        with pytest.raises(PowerDnsError) as raised:
            client.zone_exists(ZONE)
        assert raised.value.transient
        assert "within 0.3 s" in raised.value.message
    finally:
        for connection, _ in accepted:
            connection.close()
        listener.close()
