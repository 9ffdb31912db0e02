"""Parsing customers' SSH public keys: what type, how strong, and the fingerprint they know."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

ALLOWED_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
}
MIN_RSA_BITS = 2048


class InvalidSSHKey(ValueError):
    """The text is not a public key the portal accepts; the message says why, for the customer."""


@dataclass(frozen=True)
class ParsedKey:
    key_type: str
    bits: int
    fingerprint: str  # "SHA256:..." exactly as `ssh-keygen -l` prints it
    comment: str
    line: str  # normalised "type base64 comment", what goes into authorized_keys


def fingerprint_sha256(blob: bytes) -> str:
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_public_key(text: str) -> ParsedKey:
    """Validate one OpenSSH public key line and describe it, or raise InvalidSSHKey."""
    text = (text or "").strip()
    if not text:
        raise InvalidSSHKey("Paste a public key, e.g. the contents of ~/.ssh/id_ed25519.pub.")
    if "PRIVATE KEY" in text:
        raise InvalidSSHKey(
            "This is a private key. Never share it: paste the public key (the .pub file) instead."
        )
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise InvalidSSHKey("Paste exactly one key, on one line.")
    parts = lines[0].split(None, 2)
    if len(parts) < 2:
        raise InvalidSSHKey("A public key looks like 'ssh-ed25519 AAAA… comment'.")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) > 2 else ""
    if key_type not in ALLOWED_TYPES:
        raise InvalidSSHKey(
            f"Key type '{key_type[:40]}' is not supported. Use ed25519, ECDSA or RSA (2048 bits "
            "or more)."
        )
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSSHKey(
            "The key data is not valid base64; it may be cut off or mistyped."
        ) from None
    if _embedded_type(blob) != key_type:
        raise InvalidSSHKey("The key data does not match its type; it may be cut off or mixed up.")
    try:
        key = load_ssh_public_key(f"{key_type} {encoded}".encode())
    except (ValueError, TypeError) as exc:
        raise InvalidSSHKey("The key could not be read; it may be cut off or mistyped.") from exc
    bits = _key_bits(key)
    if key_type == "ssh-rsa" and bits < MIN_RSA_BITS:
        raise InvalidSSHKey(
            f"This RSA key has only {bits} bits; use at least {MIN_RSA_BITS} (or ed25519)."
        )
    return ParsedKey(
        key_type=key_type,
        bits=bits,
        fingerprint=fingerprint_sha256(blob),
        comment=comment[:200],
        line=" ".join(filter(None, [key_type, encoded, comment[:200]])),
    )


def _embedded_type(blob: bytes) -> str | None:
    # The blob starts with its own key type as an SSH string (uint32 length + bytes).
    if len(blob) < 4:
        return None
    length = int.from_bytes(blob[:4], "big")
    if length > 64 or len(blob) < 4 + length:
        return None
    return blob[4 : 4 + length].decode("ascii", errors="replace")


def _key_bits(key) -> int:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key.key_size
    raise InvalidSSHKey("Key type is not supported.")
