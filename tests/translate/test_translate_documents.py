"""Documents keep their structure (Apertium, real): Markdown code, links and tables; HTML tags, scripts
and attributes; SRT and WebVTT numbers, timings and line counts; a malformed SRT names its line; a large
document reports its progress."""

from __future__ import annotations

import re

import pytest

from clearlm.translate import SubtitleError, make_engine, parse_srt, parse_vtt, translate_document

MARKDOWN = """---
title: Guide
---
# Getting started

Welcome to the shop. Read the [return policy](https://example.com/returns) first.

- Open the `settings` page.
- Write to help@example.com or see https://example.com/help today.

```python
print("Good morning")
```

    indented code stays

| Name | Price |
|------|-------|
| Red apple | 3.5 |
"""


@pytest.fixture(scope="module")
def apertium():
    return make_engine("apertium")


def test_markdown_keeps_code_links_and_tables(apertium):
    out = translate_document(apertium, MARKDOWN, "en", "es", "markdown").text
    assert out.splitlines()[:4] == ["---", "title: Guide", "---", "# Empezando"]
    assert "Bienvenido a la tienda." in out
    assert "](https://example.com/returns)" in out and "[póliza de regreso]" in out.lower()
    assert "- Abierto la `settings` página." in out  # inline code kept, the sentence translated whole
    assert "help@example.com" in out and "https://example.com/help" in out
    assert '```python\nprint("Good morning")\n```' in out and "    indented code stays" in out
    assert "| Nombre | Precio |\n|------|-------|\n| Manzana roja | 3.5 |" in out
    assert len(out.splitlines()) == len(MARKDOWN.splitlines())


def test_html_translates_text_nodes_and_attributes_only(apertium):
    html = (
        '<html><head><style>p {color: red}</style><script>var greeting = "Good morning";</script></head>'
        '<body><h1 title="Welcome page">Welcome</h1><p>Good morning, my friend.</p>'
        '<pre>Good morning</pre><code>Good morning</code><img alt="A small dog" src="dog.png">'
        '<a href="https://example.com/good-morning">Good morning</a><!-- Good morning --></body></html>'
    )
    out = translate_document(apertium, html, "en", "es", "html").text
    assert re.findall(r"<(\w+)", out) == re.findall(r"<(\w+)", html)  # the same elements, in order
    assert '<h1 title="Página bienvenida">Bienvenido</h1>' in out and "<p>Buenos días, mi amigo.</p>" in out
    assert "<pre>Good morning</pre><code>Good morning</code>" in out and 'alt="Un perro pequeño"' in out
    assert 'var greeting = "Good morning";' in out and "<!-- Good morning -->" in out
    assert 'href="https://example.com/good-morning">Buenos días</a>' in out


SRT = """1
00:00:01,000 --> 00:00:03,500
Good morning, my friend.
The cat is on the table.

2
00:00:04,000 --> 00:00:06,000
<i>Good morning.</i>
"""


def test_srt_keeps_numbers_timings_and_line_counts(apertium):
    out = translate_document(apertium, SRT, "en", "es", "srt")
    assert out.text == (
        "1\n00:00:01,000 --> 00:00:03,500\nBuenos días, mi amigo.\nEl gato es en la mesa.\n\n"
        "2\n00:00:04,000 --> 00:00:06,000\n<i>Buenos días.</i>\n"
    )
    assert [(c.start, c.end) for c in parse_srt(out.text)] == [(1.0, 3.5), (4.0, 6.0)]


def test_vtt_keeps_its_header_notes_identifiers_and_settings(apertium):
    vtt = (
        "WEBVTT - a lesson\n\nNOTE written by hand\n\nintro\n00:01.000 --> 00:03.500 align:start\n"
        "Good morning, my friend.\n\n00:00:04.000 --> 00:00:06.000\nThe cat is on the table.\n"
    )
    out = translate_document(apertium, vtt, "en", "es", "vtt").text
    assert out == (
        "WEBVTT - a lesson\n\nNOTE written by hand\n\nintro\n00:01.000 --> 00:03.500 align:start\n"
        "Buenos días, mi amigo.\n\n00:00:04.000 --> 00:00:06.000\nEl gato es en la mesa.\n"
    )
    header, blocks = parse_vtt(out)
    assert header == ["WEBVTT - a lesson"] and [type(b).__name__ for b in blocks] == ["list", "Cue", "Cue"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\n00:00:01,000 --> 00:00:02,000\nHi\n\n2\n00:00:04 -> 00:00:06\nBye\n", "line 6: '00:00:04 -> 00:00:06' is not a timing line"),
        ("1\n00:00:01,000 --> 00:00:02,000\nHi\n\nHello there\n", "line 5: expected a cue number"),
        ("1\n00:00:05,000 --> 00:00:02,000\nHi\n", "line 2: the cue ends (2.000 s) before it starts (5.000 s)"),
        ("\n\n", "no subtitles found"),
    ],
)  # fmt: skip
def test_malformed_srt_names_its_line(text, message):
    with pytest.raises(SubtitleError, match=re.escape(message)):
        parse_srt(text)


def test_a_vtt_without_its_header_is_refused():
    with pytest.raises(SubtitleError, match="line 1: a WebVTT file starts with 'WEBVTT'"):
        parse_vtt("00:01.000 --> 00:02.000\nHi\n")


def test_a_large_document_reports_its_progress(apertium):
    paragraph = "Good morning, my friend. The cat is on the table. Where is my order?\n\n"
    text = paragraph * 400  # 1,200 sentences, 28 KB
    seen = []
    out = translate_document(
        apertium, text, "en", "es", "text", progress=lambda n, total: seen.append((n, total))
    )
    assert seen[0] == (0, 1200) and seen[-1] == (1200, 1200)
    assert [n for n, _ in seen] == sorted(n for n, _ in seen) and len(seen) > 2
    assert out.text.count("Buenos días, mi amigo.") == 400 and len(out.sentences) == 1200
