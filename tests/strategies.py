"""Hypothesis strategies shared by the bad-input campaigns (stack config, trainer config)."""

from __future__ import annotations

from hypothesis import strategies as st

# Any value YAML could hold: scalars of every kind (NaN and infinities too) nested a little.
junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=10,
)
