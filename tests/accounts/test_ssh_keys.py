"""SSH keys: only keys that really parse are stored, with the fingerprint `ssh-keygen -l` shows."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.test import Client

from accounts.models import SSHKey
from accounts.services import sshkey_add
from accounts.sshkeys import InvalidSSHKey, parse_public_key

# Made with `ssh-keygen -t ed25519 -C alice@laptop`; fingerprint as `ssh-keygen -l` printed it.
ED25519_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIGanPSx4GLJmDdpy1GFKivTj7PRYVJUS3rb35IvdQu4 alice@laptop"
)
ED25519_FINGERPRINT = "SHA256:LdVhu4GMXlbEMNO2wISfAnkmJ840mGCXfdrzX5dH6nc"


def openssh_public(private_key, comment: str = "test") -> str:
    line = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{line} {comment}"


def test_it_reads_an_ed25519_key_with_the_fingerprint_ssh_keygen_shows():
    parsed = parse_public_key(ED25519_KEY)
    assert parsed.key_type == "ssh-ed25519"
    assert parsed.bits == 256
    assert parsed.fingerprint == ED25519_FINGERPRINT
    assert parsed.comment == "alice@laptop"


@pytest.mark.parametrize(
    ("make_key", "key_type", "bits"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ecdsa-sha2-nistp256", 256),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ecdsa-sha2-nistp384", 384),
        (lambda: rsa.generate_private_key(65537, 2048), "ssh-rsa", 2048),
        (lambda: rsa.generate_private_key(65537, 4096), "ssh-rsa", 4096),
        (ed25519.Ed25519PrivateKey.generate, "ssh-ed25519", 256),
    ],
)
def test_it_accepts_modern_key_types(make_key, key_type, bits):
    parsed = parse_public_key(openssh_public(make_key()))
    assert (parsed.key_type, parsed.bits) == (key_type, bits)
    assert parsed.fingerprint.startswith("SHA256:")
    assert len(parsed.fingerprint) == len("SHA256:") + 43


def test_it_refuses_rsa_keys_under_2048_bits():
    with pytest.raises(InvalidSSHKey, match="only 1024 bits"):
        parse_public_key(openssh_public(rsa.generate_private_key(65537, 1024)))


def test_it_refuses_a_truncated_key():
    with pytest.raises(InvalidSSHKey):
        parse_public_key(ED25519_KEY.split()[0] + " " + ED25519_KEY.split()[1][:40])


def test_it_refuses_a_key_whose_data_is_of_another_type():
    rsa_data = openssh_public(rsa.generate_private_key(65537, 2048)).split()[1]
    with pytest.raises(InvalidSSHKey, match="does not match its type"):
        parse_public_key(f"ssh-ed25519 {rsa_data}")


@pytest.mark.parametrize(
    "text",
    [
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP comment",
        "hello world",
        "",
        "ssh-ed25519 not/base64!!",
    ],
)
def test_it_refuses_what_is_not_a_supported_public_key(text):
    with pytest.raises(InvalidSSHKey):
        parse_public_key(text)


def test_it_warns_when_a_private_key_is_pasted():
    private = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(InvalidSSHKey, match="private key"):
        parse_public_key(private)


def test_it_refuses_two_keys_at_once():
    second = openssh_public(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(InvalidSSHKey, match="exactly one key"):
        parse_public_key(f"{ED25519_KEY}\n{second}")


def test_it_normalises_whitespace_around_the_key():
    parsed = parse_public_key(f"  \n{ED25519_KEY.replace(' ', '   ')}  \n")
    assert parsed.line == ED25519_KEY


# --- The SSH keys page -------------------------------------------------------------------------


def test_a_customer_adds_a_key_and_sees_its_fingerprint(alice_client, alice):
    response = alice_client.post(
        "/account/ssh-keys/", {"name": "laptop", "public_key": ED25519_KEY}, follow=True
    )
    assert response.status_code == 200
    key = SSHKey.objects.get(owner=alice)
    assert (key.name, key.fingerprint, key.bits) == ("laptop", ED25519_FINGERPRINT, 256)
    assert ED25519_FINGERPRINT in response.content.decode()


def test_the_key_comment_names_the_key_when_no_name_is_given(alice_client, alice):
    alice_client.post("/account/ssh-keys/", {"name": "", "public_key": ED25519_KEY})
    assert SSHKey.objects.get(owner=alice).name == "alice@laptop"


@pytest.mark.parametrize(
    ("public_key", "message"),
    [
        (ED25519_KEY[:60], "cut off"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP x", "not supported"),
        (openssh_public(rsa.generate_private_key(65537, 1024)), "at least 2048"),
    ],
)
def test_bad_keys_get_a_clear_error_and_nothing_is_saved(alice_client, alice, public_key, message):
    response = alice_client.post("/account/ssh-keys/", {"name": "mine", "public_key": public_key})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'value="mine"' in response.content.decode(), "what the customer typed stays"
    assert not SSHKey.objects.filter(owner=alice).exists()


def test_the_same_key_twice_is_refused(alice_client, alice):
    alice_client.post("/account/ssh-keys/", {"name": "one", "public_key": ED25519_KEY})
    response = alice_client.post("/account/ssh-keys/", {"name": "two", "public_key": ED25519_KEY})
    assert "already added this key" in response.content.decode()
    assert SSHKey.objects.filter(owner=alice).count() == 1


def test_another_customer_may_add_the_same_key(alice_client, alice, bob, client):
    alice_client.post("/account/ssh-keys/", {"name": "shared", "public_key": ED25519_KEY})
    client.force_login(bob)
    client.post("/account/ssh-keys/", {"name": "shared", "public_key": ED25519_KEY})
    assert SSHKey.objects.filter(fingerprint=ED25519_FINGERPRINT).count() == 2


def test_a_customer_sees_only_their_own_keys(alice, bob, client):
    sshkey_add(owner=bob, name="bobs-key", public_key=ED25519_KEY)
    client.force_login(alice)
    assert "bobs-key" not in client.get("/account/ssh-keys/").content.decode()


def test_a_customer_deletes_their_key_with_a_post(alice_client, alice):
    key = sshkey_add(owner=alice, name="old", public_key=ED25519_KEY)
    assert alice_client.get(f"/account/ssh-keys/{key.pk}/delete/").status_code == 405
    response = alice_client.post(f"/account/ssh-keys/{key.pk}/delete/")
    assert response.status_code == 302
    assert not SSHKey.objects.filter(pk=key.pk).exists()


def test_deleting_another_customers_key_is_404_and_keeps_it(alice, mallory, client):
    key = sshkey_add(owner=alice, name="alice-key", public_key=ED25519_KEY)
    client.force_login(mallory)
    assert client.post(f"/account/ssh-keys/{key.pk}/delete/").status_code == 404
    assert SSHKey.objects.filter(pk=key.pk).exists()


def test_deleting_needs_the_csrf_token(alice):
    key = sshkey_add(owner=alice, name="k", public_key=ED25519_KEY)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(f"/account/ssh-keys/{key.pk}/delete/").status_code == 403
    assert SSHKey.objects.filter(pk=key.pk).exists()


def test_the_keys_page_needs_a_login(client, db):
    response = client.get("/account/ssh-keys/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
