"""The per-object fast paths of the name checks give exactly the verdicts of the full checks, on any name.

A listing runs both checks once per object, so each answers ordinary names with a few C-speed string tests; these
properties pit them against the full checks (the Unicode-category walk, ``PurePosixPath.parts``) on names built
from the characters and segments that matter: separators, dots, backslashes, control characters, surrogate
escapes, non-ASCII letters, junk names and lengths around the 1,024-byte limit.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from hypothesis import example, given, settings
from hypothesis import strategies as st

from synapse_dagster.core.sources import names
from synapse_dagster.core.sources.files import EXCLUDED_DIRS, EXCLUDED_FILES, _junk_in, excluded_reason

PIECES = [
    "/", "//", ".", "..", "\\", "a", "U0000001", "label.json", " ", "\t", "\x00", "\x1f", "\x7f", "\x85", "\x9f",
    "\u00a0", "\u200d", "\u2028", "\udc80", "\ufeff", "é", "e\u0301", "한글", "\U0001f600", "._", "~", "#", "%",
    "가" * 100, "x" * 255, *sorted(EXCLUDED_DIRS), *sorted(EXCLUDED_FILES),
]
NAMES = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
    st.text(max_size=40),
    st.builds(lambda wide, narrow, tail: "가" * wide + "a" * narrow + tail,  # near the 1,024-byte limit
              st.integers(0, 345), st.integers(0, 1030), st.sampled_from(PIECES)),
)


@settings(max_examples=1500, deadline=None)
@given(NAMES)
@example("a" * 1024)
@example("a" * 1025)
@example("가" * 341 + "a")  # 1,024 bytes in 342 characters
@example("가" * 342)  # 1,026 bytes
@example("P0001/.hidden")
@example("a/b/")
def test_refused_name_reason_fast_path_agrees_with_the_full_checks(name):
    assert names.refused_name_reason(name) == names._refusal(name)


def test_the_fast_path_takes_ordinary_names_and_leaves_odd_ones_to_the_full_checks():
    """Without this, a fast path that never fires would pass the property above."""
    for plain in ("U0000001/a.json", "폴더/사진 1.png", "a b/c-d_e~f#g%h.txt", "가" * 341 + "a"):
        assert names._plainly_usable(plain), plain
    for odd in ("", "/a", "a/", "a//b", "./a", "a/./b", "a/../b", "a\\b", "a\x00b", "a\x85b", "a\udc80b",
                "가" * 342, ".hidden"):
        assert not names._plainly_usable(odd), odd


@settings(max_examples=1500, deadline=None)
@given(NAMES)
@example("@eaDir")  # a file named like a junk folder is no junk
@example("/@eaDir/a")
@example("a//@eaDir/b")
@example("./._x")
@example("//.DS_Store")
@example(".")
@example("")
def test_excluded_reason_fast_path_agrees_with_pure_posix_path(name):
    parts = PurePosixPath(name).parts
    # no parts at all ('', '.', a key 'in/.' listed below 'in/'): no junk, and the name check refuses it
    expected = _junk_in(parts) if parts else None
    assert excluded_reason(name) == expected
