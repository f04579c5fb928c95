"""audit.canonical writes exactly what rfc8785.dumps writes (or raises what it raises)."""

from __future__ import annotations

import json
import math

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from audit import canonical

# Characters where JSON and JCS could part ways: controls, quote and backslash, DEL,
# U+2028/2029, the top of the BMP (sorts above a surrogate pair in UTF-16, below it by
# code point), characters above U+FFFF, and lone surrogates (JCS refuses them).
_TRICKY = '\x00\x01\x08\t\n\x0c\r\x1f "\\/\x7f\u0080\u00e9\u2028\u2029\ud7ff\ue000\uffee\uffff\U00010000\U0001f600'
_chars = st.one_of(
    st.sampled_from(_TRICKY),
    st.characters(codec="utf-8"),
    st.sampled_from(["\ud800", "\udc00", "\udfff"]),
)
_text = st.text(_chars, max_size=8)
_floats = st.one_of(
    st.floats(),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-7, 1e-6, 1e-5, 1e-4, 0.1, 1e15, 1e16, 1e20, 1e21, 1e22, 2.0**53]),
    st.sampled_from([5e-324, 1.7976931348623157e308, 9007199254740993.0, 123456789.125, 0.000123]),
)
_ints = st.one_of(
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.integers(),
    st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53)]),
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(_text, children, max_size=5),
    ),
    max_leaves=25,
)


def _rfc8785(value: object) -> tuple[str, object]:
    try:
        return "ok", rfc8785.dumps(value)
    except Exception as exc:
        return "error", type(exc)


def _ours(function, value: object) -> tuple[str, object]:
    try:
        return "ok", function(value)
    except Exception as exc:
        return "error", type(exc)


def _document_bytes(document: str) -> bytes:
    try:
        return canonical.document_text(document).encode("utf-8")
    except UnicodeEncodeError as exc:
        # document_text leaves the UTF-8 encoding, where a lone surrogate fails, to its caller.
        raise rfc8785.CanonicalizationError("lone surrogate") from exc


@settings(max_examples=800, deadline=None)
@given(_json)
@example({"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "a": 4})
@example({"\ud800": 1})
@example([1.0, -0.0, 1e-7, 1e21, 1e-5, 0.5, 2.0**53, 1e16])
@example({"a": [1, {"b": 2**53}]})
@example([float("nan")])
@example({"k": '\u2028\x7f\x00\x1f"\\'})
def test_dumps_equals_rfc8785(value):
    assert _ours(canonical.dumps, value) == _rfc8785(value)


def _refusal_as_one(outcome: tuple[str, object]) -> tuple[str, object]:
    """rfc8785 refuses a lone surrogate with CanonicalizationError in a string value but with
    UnicodeEncodeError in an object key (it sorts keys by their UTF-16 encoding first); both
    are the same refusal, which is what document_text's caller must see."""
    if outcome == ("error", UnicodeEncodeError):
        return "error", rfc8785.CanonicalizationError
    return outcome


@settings(max_examples=500, deadline=None)
@given(_json, st.booleans(), st.sampled_from([(",", ":"), (", ", ": ")]), st.booleans())
@example({"\ud800": None}, False, (",", ":"), False)  # found by hypothesis in CI: a lone surrogate key
@example({"k": "\ud800"}, False, (",", ":"), False)
def test_document_text_equals_rfc8785_of_the_decoded_document(value, ascii_only, separators, spaces):
    try:
        document = json.dumps(value, ensure_ascii=ascii_only, separators=separators)
    except (ValueError, UnicodeEncodeError):
        return
    if spaces:
        document = f" {document}\n"
    assert _ours(_document_bytes, document) == _refusal_as_one(_rfc8785(json.loads(document)))


@pytest.mark.parametrize(
    "document",
    [
        '{"b": 1e-05, "a": [1.0, -0.0, 1E2, 2.5e-300, 0.1, 1e400]}',
        '{"s": "\\u0000", "f": 1e-7}',
        '"\\u0000 1e-7 \\u0000"',
        '{"x": "\\"\\u0000-1e-7\\u0000\\""}',
        "[NaN]",
        "[1] x",
        "",
        '{"\\ud83d\\ude00": 1, "\\uffff": 2}',
        '"\\ud800"',
        "123456789012345678901",
        '{"a": 1, "a": 2}',
    ],
)
def test_document_text_edge_cases(document):
    try:
        expected = _rfc8785(json.loads(document))
    except ValueError as exc:
        expected = ("error", type(exc))
    assert _ours(_document_bytes, document) == expected


@settings(max_examples=1000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float(value):
    assert canonical.dumps(value) == rfc8785.dumps(value)
    assert canonical.document_text(repr(value)).encode() == rfc8785.dumps(value)
    assert math.isfinite(value)
