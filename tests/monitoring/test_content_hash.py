"""The batch hash is RFC 8785 sample by sample, joined (the rfc8785 package is the reference)
for every value a validated batch can hold, including those that need the exact (slow) path."""

from __future__ import annotations

import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from governance.monitoring_services import canonical_bytes

floats = st.floats(allow_nan=False, allow_infinity=False)
labels = st.none() | st.integers(min_value=-(2**31) + 1, max_value=2**31 - 1)
row = st.fixed_dictionaries(
    {
        "at": st.just("2026-11-02T14:30:00Z"),
        "instrument": st.text(max_size=50),
        "predicted": labels,
        "probability": st.none() | st.floats(min_value=0, max_value=1),
        "outcome": labels,
        "trade_count": st.integers(min_value=0, max_value=2**31 - 1),
        "pnl": st.none() | st.just("-120.50"),
        "pnl_kind": st.sampled_from(["trade", "period"]),
        "features": st.dictionaries(st.text(min_size=1, max_size=10), floats, max_size=5),
    }
)

EDGE = {"at": "x", "instrument": "", "predicted": None, "probability": None, "outcome": None, "trade_count": 0}


@settings(max_examples=300, deadline=None)
@given(st.lists(row, min_size=1, max_size=5))
@example([{**EDGE, "features": {"a": 1e-05, "b": 0.5}}])
@example([{**EDGE, "features": {"a": 1.0, "b": -0.0}}])
@example([{**EDGE, "features": {"a": 1e16, "z": 5e-324}}])
@example([{**EDGE, "features": {"\U0001f600": 1.5, "\ufb01": 2.5}}])
@example([{**EDGE, "instrument": 'a\x00\x1f\u2028\x7f"\\', "features": {}}])
@example([{**EDGE, "instrument": "1.0]", "probability": 0.25, "features": {}}])
def test_canonical_bytes_are_rfc8785(rows):
    assert canonical_bytes(rows) == rfc8785.dumps(rows)
