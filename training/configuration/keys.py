"""Key checks of YAML mappings, with a did-you-mean for misspelt keys."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


def unknown_key_message(unknown: Iterable[str], allowed: Iterable[str], where: str) -> str:
    """``unknown key(s) [...] in WHERE (did you mean ...?); allowed: [...]``."""
    allowed = sorted(allowed)
    unknown = sorted(unknown)
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} for {key!r}")
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    return f"unknown key(s) {unknown} in {where}{hint}; allowed: {allowed}"


def check_keys(
    mapping: Any,
    allowed: Iterable[str],
    where: str,
    error: type[Exception],
    required: Iterable[str] = (),
) -> None:
    """Raise ``error`` unless ``mapping`` is a mapping of allowed keys holding the required."""
    if not isinstance(mapping, Mapping):
        raise error(f"{where} must be a mapping (got {type(mapping).__name__})")
    allowed = set(allowed)
    unknown = set(mapping) - allowed
    if unknown:
        raise error(unknown_key_message(unknown, allowed, where))
    missing = [key for key in required if key not in mapping]
    if missing:
        raise error(f"missing key(s) {missing} in {where}")
