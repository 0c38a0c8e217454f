"""Secrets at rest, and keeping them (and other sensitive values) out of logs.

Webhook and callback secrets are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``) under a key derived with HKDF from the ``secret_key`` setting, or,
when the operator gives none, from the installation key stored in the database at first
start (``Meta.secret_key``).  Get methods never return a secret: they say whether one
is set.
"""

from __future__ import annotations

import base64
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: What get methods show instead of a secret.
MASK = "********"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted (the secret_key setting changed)."""


class SecretBox:
    def __init__(self, key_material: str) -> None:
        if not key_material:
            raise ValueError("no key to encrypt secrets with")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"rpcgw-secrets",
                   info=b"webhook and callback secrets").derive(key_material.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SecretUnreadable(
                "a stored secret cannot be decrypted: was the secret_key setting changed?"
            ) from None


def mask(secret: str | None) -> str | None:
    return MASK if secret else None


def redact_url(url: str) -> str:
    """An endpoint as it may appear in logs: no credentials, query or fragment (receivers
    often put tokens there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "",
                           ""))
    except ValueError:
        return "<invalid url>"
