"""Phone numbers: E.164 normalisation with ``phonenumbers`` (Google's libphonenumber)."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


class InvalidNumber(ValueError):
    pass


@lru_cache(maxsize=65536)
def normalize(raw: str, default_region: str = "") -> str:
    """``"+33 6 12-34-56-78"`` → ``"+33612345678"``.

    Numbers without ``+`` or ``00`` need ``default_region`` (ISO country code).  Only
    the length is checked (``is_possible_number``), not the carrier ranges, so test and
    newly allocated ranges are accepted; the network is the final judge.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, default_region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidNumber(
                f"{raw!r} has no country code (write it as +<country><number>)") from None
        raise InvalidNumber(f"{raw!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidNumber(f"{raw!r} does not have a possible length for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
