"""Signatures of deliveries.

Two signatures are sent when a subscription has a secret:

* ``X-CALLR-HmacSignature``: CALLR's, ``base64(HMAC_<algo>(secret, body))`` over the
  exact bytes of the body (callr.md §3).  It has no timestamp, so a captured request can
  be replayed; it is kept for receivers written for CALLR.
* ``X-Rpcgw-Signature: v1=<hex>`` with ``X-Rpcgw-Timestamp: <unix seconds>``:
  ``hex(HMAC_SHA256(secret, timestamp + "." + body))``.  A receiver that checks the
  signature and refuses timestamps older than a few minutes (and dedupes on the event
  id inside that window) is safe against replays.  ``verify`` below is that check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, Callable, Mapping

ALGORITHMS: dict[str, Callable[..., Any]] = {
    "SHA256": hashlib.sha256, "SHA1": hashlib.sha1, "SHA512": hashlib.sha512,
    "MD5": hashlib.md5,
}
DEFAULT_ALGORITHM = "SHA256"

HEADER_EVENT_ID = "X-CALLR-EventId"
HEADER_CALLR_SIGNATURE = "X-CALLR-HmacSignature"
HEADER_TIMESTAMP = "X-Rpcgw-Timestamp"
HEADER_SIGNATURE = "X-Rpcgw-Signature"


def callr_signature(secret: str, body: bytes, algo: str = DEFAULT_ALGORITHM) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, ALGORITHMS[algo]).digest()
    return base64.b64encode(digest).decode("ascii")


def timestamped_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signature_headers(secret: str, algo: str, body: bytes,
                      timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {HEADER_CALLR_SIGNATURE: callr_signature(secret, body, algo),
            HEADER_TIMESTAMP: str(ts),
            HEADER_SIGNATURE: timestamped_signature(secret, ts, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *,
           tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does: check the timestamped signature and the timestamp's age."""
    try:
        ts = int(headers[HEADER_TIMESTAMP])
        given = headers[HEADER_SIGNATURE]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    return hmac.compare_digest(given, timestamped_signature(secret, ts, body))
