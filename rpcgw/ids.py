"""Public object hashes: 8 upper-case alphanumerics, as CALLR's (``8242D945``).

A hash is a keyed permutation of the row id, not a stored random string: unique by
construction (random 8-character strings collide after a few million messages), no
column or index to keep, and ``sms.get(hash)`` maps straight back to the primary key.
The permutation is a 4-round Feistel network over 42 bits with cycle walking to stay
below 36**8, keyed by a secret made once per installation, so hashes do not reveal
how many messages were sent (it hides volume; it is not meant to resist cryptanalysis).
Different object kinds use different keys.
"""

from __future__ import annotations

import hashlib
import re
import string

ALPHABET = string.digits + string.ascii_uppercase
LENGTH = 8
DOMAIN = 36 ** LENGTH  # 2.8e12 ids per kind
_HALF_BITS = 21
_HALF_MASK = (1 << _HALF_BITS) - 1
_ROUNDS = 4
_MASK64 = (1 << 64) - 1
_VALID = re.compile(r"[0-9A-Za-z]{8}")
#: Base-36 digit pairs "00" … "ZZ", for encoding two digits at a time.
_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]


class HashCodec:
    """Bijection between ids in ``[1, 36**8)`` and 8-character hashes."""

    def __init__(self, key: bytes | str, kind: str) -> None:
        if isinstance(key, str):
            key = bytes.fromhex(key)
        # One 64-bit round key per round, derived from the installation key and the kind.
        self._round_keys = [
            int.from_bytes(hashlib.blake2b(f"{kind}:{r}".encode(), key=key,
                                           digest_size=8).digest(), "big")
            for r in range(_ROUNDS)
        ]

    @staticmethod
    def _f(round_key: int, value: int) -> int:
        # A keyed 64-bit mixer (splitmix64's finaliser): the Feistel network is a
        # bijection whatever the round function, which only has to scramble well and be
        # cheap, since it runs on every send.
        z = (value ^ round_key) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return (z ^ (z >> 31)) & _HALF_MASK

    def _permute(self, value: int) -> int:
        left, right = value >> _HALF_BITS, value & _HALF_MASK
        for key in self._round_keys:
            left, right = right, left ^ self._f(key, right)
        return (left << _HALF_BITS) | right

    def _unpermute(self, value: int) -> int:
        left, right = value >> _HALF_BITS, value & _HALF_MASK
        for key in reversed(self._round_keys):
            left, right = right ^ self._f(key, left), left
        return (left << _HALF_BITS) | right

    def encode(self, ident: int) -> str:
        if not 0 < ident < DOMAIN:
            raise ValueError(f"id {ident} outside the hash domain")
        value = self._permute(ident)
        while value >= DOMAIN:  # cycle walking keeps the result inside 36**8
            value = self._permute(value)
        high, low = divmod(value, 1296 * 1296)  # base 36, two digits at a time
        return (_PAIRS[high // 1296] + _PAIRS[high % 1296]
                + _PAIRS[low // 1296] + _PAIRS[low % 1296])

    def decode(self, text: str) -> int | None:
        """The id behind a hash, or None when ``text`` cannot be one of ours."""
        if not isinstance(text, str) or not _VALID.fullmatch(text):
            return None
        value = int(text, 36)
        value = self._unpermute(value)
        while value >= DOMAIN:
            value = self._unpermute(value)
        return value or None
