"""E.164 normalisation: the fast path for numbers already in E.164 must answer exactly
what phonenumbers' own parse answers, for every country code and length."""

from __future__ import annotations

import random

import pytest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from rpcgw import phone


def outcome(fn, number: str) -> str:
    try:
        return fn(number, "")
    except phone.InvalidNumber as exc:
        return f"error: {exc}"


def test_fast_path_agrees_with_parse_on_every_country_code_and_length() -> None:
    rng = random.Random(20261122)
    numbers = []
    for code in COUNTRY_CODE_TO_REGION_CODE:
        digits = str(code)
        for total in range(7, 16):
            national = total - len(digits)
            if national < 1:
                continue
            for first in "0123456789":  # national prefixes (0, 1, 8, …) and the rest
                rest = "".join(rng.choice("0123456789") for _ in range(national - 1))
                numbers.append(f"+{digits}{first}{rest}")
    # Unassigned country codes and numbers that are not E.164-shaped go to parse too.
    numbers += ["+2" + "5" * 9, "+80" + "1" * 8, "+999123456789", "+0123456789",
                "+33 6 12 34 56 78", "0033612345678", "+3361234567890123"]
    rng.shuffle(numbers)  # the memo of verdicts gets filled by whichever comes first
    phone._possible.clear()
    phone.normalize.cache_clear()
    mismatches = [(n, outcome(phone.normalize, n), outcome(phone._parse, n))
                  for n in numbers if outcome(phone.normalize, n) != outcome(phone._parse, n)]
    assert not mismatches, mismatches[:10]
    # The comparison means something only if the fast path answered many of them.
    fast = [n for n in numbers if phone._E164.fullmatch(n) and phone._unchanged_by_parse(n)]
    assert len(fast) > 5_000
    # The fast path really is taken for ordinary mobile numbers.
    assert phone._unchanged_by_parse("+33612345678")
    assert phone._unchanged_by_parse("+14155550123")
    assert not phone._unchanged_by_parse("+330612345678")  # French trunk 0: parse strips it


@pytest.mark.parametrize("raw, expected", [
    ("+33612345678", "+33612345678"),
    ("+33 6 12 34 56 78", "+33612345678"),
    ("0033612345678", "+33612345678"),
    ("+44 (0)20 7946 0958", "+442079460958"),
])
def test_normalize_examples(raw: str, expected: str) -> None:
    assert phone.normalize(raw, "") == expected


@pytest.mark.parametrize("raw", ["+3361", "+999123456789", "hello", "+33 612345678901234"])
def test_impossible_numbers_are_refused(raw: str) -> None:
    with pytest.raises(phone.InvalidNumber):
        phone.normalize(raw, "")
