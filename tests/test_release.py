"""Where a streamed answer may be cut to be checked and released (``clearlm.pipeline.release``)."""

from __future__ import annotations

import pytest

from clearlm.govern import parse_policy
from clearlm.pipeline.release import KEEP, MAX_HELD, release_point, streams


@pytest.mark.parametrize(
    ("text", "released"),
    [
        ("The clinic opens at eight. Bri", "The clinic opens at eight. "),
        ("Are you sure? Yes! And", "Are you sure? Yes! "),
        ("Step one\n\nStep", "Step one\n\n"),
        ("Ask Dr. Okafor at St. Mary", ""),  # titles and abbreviations end no sentence
        ("Version 3.5 is out, e.g. today", ""),
        ("No end yet", ""),
    ],
)
def test_release_points_are_sentence_and_line_ends(text, released):
    assert text[: release_point(text)] == released


def test_a_long_text_without_an_end_is_cut_at_white_space_keeping_the_tail():
    text = "word " * 100  # 500 characters, no sentence end
    cut = release_point(text)
    assert len(text) - KEEP - 5 <= cut <= len(text) - KEEP and text[cut - 1] == " "
    assert release_point("x" * (MAX_HELD + 50)) == MAX_HELD + 50 - KEEP  # no space at all


def test_only_policies_that_never_block_their_output_stream():
    assert streams(parse_policy("output:\n  - {scanner: pii, action: redact}"))
    assert streams(parse_policy("output:\n  - {scanner: toxicity, action: escalate}"))
    assert not streams(parse_policy("output:\n  - {scanner: toxicity, action: block}"))
    assert not streams(parse_policy("input:\n  - {scanner: pii, action: redact}"))
    assert not streams(None)
