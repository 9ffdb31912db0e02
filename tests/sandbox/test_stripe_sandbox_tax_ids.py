# ruff: noqa: F811 - the sbx and client fixtures come from tests/sandbox/stripe_helpers.py
"""Customer tax IDs on the Stripe sandbox, as Stripe keeps them: created (alone or with the
customer), listed, deleted, their format checked, and copied onto invoices."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.stripe_helpers import (  # noqa: F401 - fixtures
    catalog,
    client,
    event_types,
    sbx,
    session_for,
)


def test_a_tax_id_is_created_listed_and_deleted(client):
    customer = client.v1.customers.create({"name": "Exemple SARL", "address": {"country": "FR"}})
    created = client.v1.customers.tax_ids.create(
        customer.id, {"type": "eu_vat", "value": "FR44732829320"}
    )
    assert created.id.startswith("txi_") and created.object == "tax_id"
    assert (created.type, created.value, created.country) == ("eu_vat", "FR44732829320", "FR")
    assert created.customer == customer.id
    assert created.owner.type == "customer" and created.owner.customer == customer.id
    assert created.verification.status == "pending"
    listed = client.v1.customers.tax_ids.list(customer.id)
    assert [t.id for t in listed.data] == [created.id]
    assert listed.url == f"/v1/customers/{customer.id}/tax_ids"
    assert client.v1.customers.tax_ids.retrieve(customer.id, created.id).value == "FR44732829320"
    deleted = client.v1.customers.tax_ids.delete(customer.id, created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    assert client.v1.customers.tax_ids.list(customer.id).data == []
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.customers.tax_ids.retrieve(customer.id, created.id)
    assert gone.value.code == "resource_missing"


def test_tax_ids_come_with_the_customer_only_when_expanded(client):
    customer = client.v1.customers.create(
        {"name": "Exemple SARL", "tax_id_data": [{"type": "eu_vat", "value": "FR44732829320"}]}
    )
    assert "tax_ids" not in client.v1.customers.retrieve(customer.id)
    expanded = client.v1.customers.retrieve(customer.id, {"expand": ["tax_ids"]})
    assert [(t.type, t.value) for t in expanded.tax_ids.data] == [("eu_vat", "FR44732829320")]
    assert expanded.tax_ids.data[0].country == "FR"


def test_greek_and_northern_irish_vat_ids_name_their_countries(client):
    customer = client.v1.customers.create({"name": "Paradigma AE"})
    greek = client.v1.customers.tax_ids.create(
        customer.id, {"type": "eu_vat", "value": "EL123456783"}
    )
    northern_irish = client.v1.customers.tax_ids.create(
        customer.id, {"type": "eu_vat", "value": "XI123456789"}
    )
    assert (greek.country, northern_irish.country) == ("GR", "GB")


@pytest.mark.parametrize("value", ["FR1234", "DE12345678", "XX123456789", "NL123456789A01", ""])
def test_an_eu_vat_value_of_the_wrong_shape_is_refused_as_stripe_does(client, value):
    customer = client.v1.customers.create({"name": "Exemple SARL"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.tax_ids.create(customer.id, {"type": "eu_vat", "value": value})
    error = refused.value
    if value:
        assert (error.code, error.param) == ("tax_id_invalid", "value")
        assert error.user_message == "Invalid value for eu_vat."
    else:
        assert (error.code, error.param) == ("parameter_missing", "value")
    assert client.v1.customers.tax_ids.list(customer.id).data == []


def test_a_bad_tax_id_at_creation_creates_no_customer(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.create(
            {"name": "Exemple SARL", "tax_id_data": [{"type": "eu_vat", "value": "FR12"}]}
        )
    assert (refused.value.code, refused.value.param) == ("tax_id_invalid", "tax_id_data[0][value]")
    assert client.v1.customers.list().data == []


def test_an_unknown_type_or_parameter_is_refused(client):
    customer = client.v1.customers.create({"name": "Exemple SARL"})
    with pytest.raises(stripe.InvalidRequestError) as unknown_type:
        client.v1.customers.tax_ids.create(customer.id, {"type": "eu_tva", "value": "FR1"})
    assert unknown_type.value.param == "type"
    assert "Invalid type: must be one of" in unknown_type.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as unknown_param:
        client.v1.customers.tax_ids.create(
            customer.id, {"type": "eu_vat", "value": "FR44732829320", "country": "FR"}
        )
    assert unknown_param.value.code == "parameter_unknown"


def test_a_customer_that_does_not_exist_has_no_tax_ids(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.tax_ids.create("cus_nobody", {"type": "eu_vat", "value": "FR1"})
    assert missing.value.code == "resource_missing"


def test_an_invoice_carries_the_customers_tax_ids_as_they_were_when_finalized(client, sbx):
    _, price, _, vat, customer = catalog(client)
    client.v1.customers.tax_ids.create(customer.id, {"type": "eu_vat", "value": "DE123456788"})
    session = session_for(client, price, vat, customer, setup_fee=False)
    sbx.pay(session.id, "4242424242424242")
    invoice = client.v1.invoices.list({"customer": customer.id}).data[0]
    assert [(t.type, t.value) for t in invoice.customer_tax_ids] == [("eu_vat", "DE123456788")]
    for tax_id in client.v1.customers.tax_ids.list(customer.id).data:
        client.v1.customers.tax_ids.delete(customer.id, tax_id.id)
    again = client.v1.invoices.retrieve(invoice.id)
    assert [t.value for t in again.customer_tax_ids] == ["DE123456788"]  # finalized: kept
    assert "customer.tax_id.created" not in event_types(client)  # like customer.created
