"""What every route shares: JSON errors with a code and a message, rate limits per token with
429 and Retry-After, idempotency keys on POST, pagination, nothing cached."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts.models import SSHKey
from tests.accounts.test_ssh_keys import ED25519_KEY
from tests.api.conftest import Api, token_for
from tests.billing.conftest import place

pytestmark = pytest.mark.django_db


def test_a_refused_input_is_json_naming_the_field(api_as, alice):
    response = api_as(alice).post("/ssh-keys", {"name": "laptop", "public_key": "ssh-rsa nope"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "refused" and body["field"] == "public_key"
    assert body["message"]


def test_a_malformed_body_is_json_naming_the_field(api_as, alice):
    response = api_as(alice).post("/ssh-keys", {"name": "laptop"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid" and body["field"] == "public_key"
    assert body["errors"][0]["field"] == "public_key"
    assert "public_key" in body["message"]


def test_not_found_is_json(api_as, alice):
    response = api_as(alice).get("/servers/999999")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "field": None}


def test_answers_are_not_cached(api_as, alice):
    response = api_as(alice).get("/ssh-keys")
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_a_token_beyond_its_rate_gets_429_with_retry_after(client, alice, settings):
    settings.API_RATE_LIMIT = 3
    settings.API_RATE_WINDOW = 60
    api = Api(client, token_for(alice))
    answers = [api.get("/ssh-keys").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    refused = api.get("/ssh-keys")
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Per token: another token of the same customer has its own allowance.
    assert Api(client, token_for(alice)).get("/ssh-keys").status_code == 200


def test_lists_are_paged(api_as, alice, shop):
    for number in range(3):
        place(alice, shop, hostname=f"web-{number}")
    api = api_as(alice)
    first = api.get("/orders", page=1, per_page=2).json()
    assert [item["hostname"] for item in first["items"]] == ["web-2", "web-1"]
    assert (first["count"], first["page"], first["per_page"]) == (3, 1, 2)
    second = api.get("/orders", page=2, per_page=2).json()
    assert [item["hostname"] for item in second["items"]] == ["web-0"]
    assert api.get("/orders", page=3, per_page=2).json()["items"] == []
    too_many = api.get("/orders", per_page=101)
    assert too_many.status_code == 422 and too_many.json()["field"] == "per_page"
    assert api.get("/orders", page=0).json()["field"] == "page"


def test_a_post_repeated_with_its_idempotency_key_is_answered_again_not_done_twice(api_as, alice):
    api = api_as(alice)
    body = {"name": "laptop", "public_key": ED25519_KEY}
    first = api.post("/ssh-keys", body, headers={"Idempotency-Key": "key-1"})
    again = api.post("/ssh-keys", body, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert SSHKey.objects.filter(owner=alice).count() == 1


def test_the_same_key_with_another_request_is_refused(api_as, alice):
    api = api_as(alice)
    api.post(
        "/ssh-keys", {"name": "a", "public_key": ED25519_KEY}, headers={"Idempotency-Key": "k"}
    )
    other = api.post(
        "/ssh-keys", {"name": "b", "public_key": "x"}, headers={"Idempotency-Key": "k"}
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


def test_keys_belong_to_their_token(client, alice, bob):
    body = {"name": "laptop", "public_key": ED25519_KEY}
    Api(client, token_for(alice)).post("/ssh-keys", body, headers={"Idempotency-Key": "same"})
    answer = Api(client, token_for(bob)).post(
        "/ssh-keys", body, headers={"Idempotency-Key": "same"}
    )
    assert answer.status_code == 201 and "Idempotent-Replayed" not in answer
    assert SSHKey.objects.filter(owner=bob).count() == 1


def test_an_answer_that_did_no_work_is_not_kept(client, alice, settings):
    """A 429 (or 401, 403, 5xx) is not the request's result: the retry runs."""
    settings.API_RATE_LIMIT = 1
    api = Api(client, token_for(alice))
    api.get("/ssh-keys")
    body = {"name": "laptop", "public_key": ED25519_KEY}
    assert api.post("/ssh-keys", body, headers={"Idempotency-Key": "k"}).status_code == 429
    settings.API_RATE_LIMIT = 100
    assert api.post("/ssh-keys", body, headers={"Idempotency-Key": "k"}).status_code == 201


def test_a_key_that_is_not_printable_text_is_refused(api_as, alice):
    response = api_as(alice).post("/ssh-keys", {}, headers={"Idempotency-Key": "with space"})
    assert response.status_code == 422 and "Idempotency-Key" in response.json()["message"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_do_the_work_once(alice, live_server):
    """Two requests at once with one key: one does the work, the other is told to retry (409)
    or gets the first answer; never two keys."""
    import requests

    secret = token_for(alice)
    body = {"name": "laptop", "public_key": ED25519_KEY}
    answers = []

    def post():
        answers.append(
            requests.post(
                f"{live_server.url}/api/v1/ssh-keys",
                json=body,
                headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "race"},
                timeout=30,
            ).status_code
        )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    connection.close()
    assert SSHKey.objects.filter(owner=alice).count() == 1
    assert answers.count(201) >= 1 and set(answers) <= {201, 409}
