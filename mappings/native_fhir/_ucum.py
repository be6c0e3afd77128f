"""Does a units string parse as UCUM (``http://unitsofmeasure.org``)? Which UCUM code is it?

A deliberately small validator: terms joined by ``.`` or ``/``, each an optional factor
(``10*3``), a prefixed atom from :data:`ATOMS`, an exponent and ``{annotations}``. Common
non-UCUM spellings labs send are translated through :data:`SYNONYMS`; the original text
stays in ``Quantity.unit``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

ATOMS: Final = frozenset(
    [
        "g",
        "L",
        "l",
        "m",
        "s",
        "min",
        "h",
        "d",
        "wk",
        "mo",
        "a",
        "mol",
        "eq",
        "osm",
        "U",
        "[IU]",
        "[iU]",
        "%",
        "Cel",
        "[degF]",
        "K",
        "Pa",
        "bar",
        "m[Hg]",
        "m[H2O]",
        "kat",
        "[ppm]",
        "[ppb]",
        "[ppth]",
        "[pH]",
        "[arb'U]",
        "[CFU]",
        "[HPF]",
        "[LPF]",
        "[drp]",
        "[in_i]",
        "[ft_i]",
        "[lb_av]",
        "[oz_av]",
        "cal",
        "J",
        "W",
        "V",
        "A",
        "Ohm",
        "Hz",
        "t",
        "[beats]",
        "[breaths]",
        "/min",
    ]
)
"""UCUM atoms (case-sensitive) that lab results use."""
PREFIXES: Final = ("da", "k", "h", "d", "c", "m", "u", "n", "p", "f", "M", "G")
SYNONYMS: Final[dict[str, str]] = {
    "mEq/L": "meq/L",
    "IU/L": "[IU]/L",
    "IU/mL": "[IU]/mL",
    "mIU/mL": "m[IU]/mL",
    "mIU/L": "m[IU]/L",
    "uIU/mL": "u[IU]/mL",
    "K/uL": "10*3/uL",
    "x10E3/uL": "10*3/uL",
    "x10E6/uL": "10*6/uL",
    "x10^9/L": "10*9/L",
    "x10^12/L": "10*12/L",
    "mmHg": "mm[Hg]",
    "sec": "s",
    "bpm": "/min",
}
"""Units as commonly sent -> UCUM code."""

_TERM = re.compile(
    r"^(?:(?P<num>\d+)(?:\*(?P<pow>[+-]?\d+))?)?(?P<atom>[A-Za-z%\[\]'_0-9]*?)(?P<exp>[+-]?\d+)?"
    r"(?:\{[^{}]*\})?$"
)


@lru_cache(maxsize=4096)
def ucum_code(units: str | None) -> str | None:
    """The UCUM code for ``units``, or ``None`` when it does not parse as UCUM.

    Memoized: a page of Observations asks this for every value and range bound, and a
    feed uses a handful of distinct units; parsing them each time was a third of a search."""
    if not units:
        return None
    if units in SYNONYMS:
        return SYNONYMS[units]
    if any(ch.isspace() for ch in units):
        return None
    bare = re.sub(r"\{[^{}]*\}", "{}", units)  # annotations may contain '.' or '/'
    terms = re.split(r"[./]", bare[1:] if bare.startswith("/") else bare)
    return units if all(_term_ok(term) for term in terms) else None


def _term_ok(term: str) -> bool:
    match = _TERM.match(term)
    if not term or match is None:
        return False
    atom = match.group("atom")
    if not atom:
        return bool(match.group("num")) or term.startswith("{")
    return _atom_ok(atom)


def _atom_ok(atom: str) -> bool:
    if atom in ATOMS:
        return True
    return any(atom.startswith(p) and atom[len(p) :] in ATOMS for p in PREFIXES)
