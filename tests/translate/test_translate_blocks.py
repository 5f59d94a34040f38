"""A large document block by block (real Apertium en-es): blocks cut only where Markdown allows (a blank
line outside fences and front matter, not before a ``---``), the same translation as the document whole,
progress in sentences of the whole document; the CLI writes a file's blocks as they come."""

from __future__ import annotations

import pytest

from clearlm.translate import make_engine, translate_document
from clearlm.translate.blocks import blocks, count_sentences, translate_blocks

DOC = """---
title: Guide
---
# Help

Click the **red** button. Where is my order?

```text
Good morning.

Good night.
```

---

- Read the [policy](https://example.com/p) first.
- Open `settings` now.

Thank you. Bye.
"""


def test_blocks_are_cut_only_at_blank_lines_outside_fences_and_front_matter():
    spans = blocks(DOC, "markdown", block_lines=1)
    parts = [DOC[a:b] for a, b in spans]
    assert "\n".join(parts) == DOC
    assert all(not p.startswith("---") for p in parts[1:])  # never read as front matter
    assert any("Good morning.\n\nGood night.\n```" in p for p in parts)  # the fence is not cut
    assert parts[0].startswith("---\ntitle: Guide\n---\n# Help")
    assert len(parts) > 3
    assert sum(count_sentences(p, "markdown") for p in parts) == 7  # Help; 2; 1; 1; 2 (not the code)


@pytest.mark.parametrize("fmt", ["markdown", "text"])
def test_block_by_block_is_the_same_translation_with_progress_in_sentences(fmt):
    engine = make_engine("apertium")
    text = DOC * 3
    seen = []
    out = list(
        translate_blocks(
            engine, text, "en", "es", fmt, progress=lambda n, t: seen.append((n, t)), block_lines=7
        )
    )
    assert len(out) > 2
    assert "\n".join(b.text for b in out) == translate_document(engine, text, "en", "es", fmt).text
    total = sum(b.count for b in out)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [n for n, _ in seen] == sorted(n for n, _ in seen) and {t for _, t in seen} == {total}
