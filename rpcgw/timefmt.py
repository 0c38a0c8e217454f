"""CALLR's date format: ``YYYY-MM-DD HH:MM:SS`` in UTC, unset as ``0000-00-00 00:00:00``."""

from __future__ import annotations

from datetime import datetime, timezone

ZERO = "0000-00-00 00:00:00"
_FORMAT = "%Y-%m-%d %H:%M:%S"


def fmt_ms(value: int | None) -> str:
    if not value:
        return ZERO
    return datetime.fromtimestamp(value / 1000, timezone.utc).strftime(_FORMAT)


def iso_ms(value: int) -> str:
    """ISO 8601 with milliseconds, as CALLR's webhook ``event_at``."""
    dt = datetime.fromtimestamp(value / 1000, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value % 1000:03d}Z"


def parse_datetime(text: str) -> int:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` (UTC) to milliseconds; ValueError else."""
    text = text.strip()
    for fmt in (_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ",
                "%Y-%m-%d"):
        try:
            dt = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return int(dt.replace(tzinfo=timezone.utc).timestamp() * 1000)
    raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD HH:MM:SS")
