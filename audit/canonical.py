"""RFC 8785 (JSON Canonicalization Scheme) text, fast.

The ``rfc8785`` package is correct but pure Python, and canonicalising dominated the time of
a full verification. For the values the audit log holds, the standard library's C encoder,
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, writes exactly
the same text; this module uses it whenever that provably holds, and hands everything else
to ``rfc8785.dumps``, so the result is always RFC 8785's, errors included
(tests/audit/test_canonical.py checks it against ``rfc8785`` over arbitrary JSON values).
See docs/decisions/0007-fast-canonical-json.md.

Where the two agree, and why:

- strings: both escape ``"``, ``\\``, ``\\b \\f \\n \\r \\t`` by name and every other control
  character below U+0020 as ``\\u00xx`` (lowercase hex), and write everything else,
  U+2028, U+2029 and DEL included, as itself. A lone surrogate cannot be encoded to UTF-8:
  we fall back, and ``rfc8785`` raises its error.
- integers in [-(2**53 - 1), 2**53 - 1], ``true``, ``false``, ``null``: identical. Outside
  that range ``rfc8785`` refuses the integer, so we fall back to let it.
- floats: JCS uses ECMAScript's number form, Python ``repr``. They agree exactly when
  ``repr`` has no exponent and does not end in ``.0`` (e.g. ``0.25``, ``-3.5``). Integral
  floats written without an exponent (``1.0``, ``-0.0``) are JCS ``1``, ``0``: the same as
  the int, so they are written as ints. Anything else (``1e-05``, ``1e+16``, NaN,
  infinities) falls back.
- object keys: JCS sorts by UTF-16 code units, Python by code points. The two orders agree
  unless a key holds a character above U+FFFF (a surrogate pair in UTF-16 sorts below
  U+E000-U+FFFF), so such objects fall back.
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
import re
from collections.abc import Callable
from typing import Any

import rfc8785

MAX_INT = 2**53 - 1

# The C encoder behind json.dumps, made once: json.JSONEncoder.encode builds a new one on
# every call, which costs more than encoding a small object.
if json.encoder.c_make_encoder is not None:
    _c_encoder = json.encoder.c_make_encoder(
        None, json.JSONEncoder().default, json.encoder.c_encode_basestring, None, ":", ",", True, False, False
    )

    def _encode(value: Any) -> str:
        return "".join(_c_encoder(value, 0))

else:  # pragma: no cover - CPython always has _json
    _encode = json.JSONEncoder(
        ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False, check_circular=False
    ).encode

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class _Fallback(Exception):
    """The value is outside the subset where the C encoder provably writes JCS."""


def _fixed_float(value: float) -> float | int:
    """The float, or the int JCS writes it as; ``_Fallback`` when repr and JCS differ otherwise."""
    text = float.__repr__(value)
    if "e" in text or "n" in text:  # exponent form, "inf", "nan"
        raise _Fallback
    return int(value) if text.endswith(".0") else value


def _keys_sort_alike(obj: dict[Any, Any]) -> bool:
    try:
        if all(map(str.isascii, obj)):
            return True
    except TypeError:  # a key that is not a string: rfc8785 raises for it
        return False
    return all(type(key) is str and not _ASTRAL.search(key) for key in obj)


def _scan(container: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """Raise ``_Fallback`` unless the C encoder writes JCS for ``container`` once its
    integral floats are ints; return whether it holds any such float."""
    if type(container) is dict:
        if not _keys_sort_alike(container):
            raise _Fallback
        items: Any = container.values()
    else:
        items = container
    integral = False
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -MAX_INT <= item <= MAX_INT:
                continue
            raise _Fallback
        if kind is float:
            integral = type(_fixed_float(item)) is int or integral
        elif kind is dict or kind is list or kind is tuple:
            integral = _scan(item) or integral
        else:
            raise _Fallback
    return integral


def _with_int_floats(value: Any) -> Any:
    """A copy of a scanned value with its integral floats as ints."""
    kind = type(value)
    if kind is float:
        return _fixed_float(value)
    if kind is dict:
        return {key: _with_int_floats(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_with_int_floats(item) for item in value]
    return value


def _fast_text(value: Any) -> str:
    """JCS text by the C encoder, or ``_Fallback``. May hold lone surrogates: encoding it
    to UTF-8 then fails, which callers treat as a fallback too."""
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        if _scan(value):
            value = _with_int_floats(value)
    elif kind is float:
        value = _fixed_float(value)
    elif not (kind is str or kind is bool or value is None or (kind is int and -MAX_INT <= value <= MAX_INT)):
        raise _Fallback
    return _encode(value)


def dumps(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value: the same result, and errors, as ``rfc8785.dumps``."""
    try:
        return _fast_text(value).encode("utf-8")
    except (_Fallback, UnicodeEncodeError):
        return rfc8785.dumps(value)


# --- straight from JSON text ---------------------------------------------------------
# Decoding with hooks checks the numbers as the C scanner meets them, which is much cheaper
# than walking the decoded value again in Python.


def _parse_int(literal: str) -> int:
    value = int(literal)
    if -MAX_INT <= value <= MAX_INT:
        return value
    raise _Fallback


def _parse_constant(literal: str) -> float:
    raise _Fallback  # NaN, Infinity: not JSON, and not representable in JCS


def _parse_float(literal: str) -> float | int:
    return _fixed_float(float(literal))


def _parse_float_marked(literal: str) -> float | int | str:
    """As ``_parse_float``, but a float whose repr has an exponent becomes a marker string,
    NUL + its JCS text + NUL, which ``document_text`` swaps back in after encoding."""
    value = float(literal)
    text = float.__repr__(value)
    if "e" not in text or "n" in text:
        return _fixed_float(value)
    return f"\x00{rfc8785.dumps(value).decode('ascii')}\x00"


def _scanner(parse_float: Callable[[str], Any]) -> Callable[[str, int], tuple[Any, int]]:
    decoder = json.JSONDecoder(parse_float=parse_float, parse_int=_parse_int, parse_constant=_parse_constant)
    # The C scanner itself: JSONDecoder.decode adds two regex matches and Python frames.
    return (json.scanner.c_make_scanner or json.scanner.py_make_scanner)(decoder)


_scan_checked = _scanner(_parse_float)
_scan_marked = _scanner(_parse_float_marked)
_MARKER = re.compile(r'"\\u0000([-+.0-9e]+)\\u0000"')


def document_text(document: str) -> str:
    """The RFC 8785 text of the value ``json.loads(document)`` gives, as a str.

    Encode it to UTF-8 for the canonical bytes; that raises ``UnicodeEncodeError`` for a
    lone surrogate, which JCS refuses (``rfc8785.dumps`` then raises). Raises
    ``json.JSONDecodeError`` when ``document`` is not JSON.
    """
    if "\\ud" in document or "\\uD" in document or (not document.isascii() and _ASTRAL.search(document)):
        # A character above U+FFFF (or a lone surrogate) somewhere, perhaps in a key:
        # the general path checks the keys of the decoded value.
        value = json.loads(document)
    else:
        # Markers are safe only where no string can hold a NUL: valid JSON spells it \u0000.
        marked = "\\u0000" not in document
        try:
            value, end = (_scan_marked if marked else _scan_checked)(document, 0)
            if end == len(document):
                text = _encode(value)
                return _MARKER.sub(r"\1", text) if marked and "\\u0000" in text else text
        except (_Fallback, StopIteration):
            pass
        # Leading or trailing whitespace, invalid JSON, or a number that needs rfc8785.
        value = json.loads(document)
    try:
        return _fast_text(value)
    except _Fallback:
        return rfc8785.dumps(value).decode("utf-8")
