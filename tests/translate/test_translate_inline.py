"""Inline markup does not split a sentence (real Apertium en-es): Markdown emphasis, links, code spans and
inline HTML, and HTML's b/a/em/code inside a paragraph, reach the engine as one sentence with placeholder
tokens and come back with the markup, the URL and the code verbatim; a translation that loses a token
(Bergamot rewrites them) falls back to the text between the markup, run by run, markup still kept."""

from __future__ import annotations

import pytest

from clearlm.translate import make_engine, translate_document
from clearlm.translate.inline import mask_markdown


class Recorded:
    """The real engine, with the sentences it was given kept (to assert what one engine sentence is)."""

    def __init__(self, engine):
        self.engine, self.name, self.seen = engine, engine.name, []
        self.batch_size = getattr(engine, "batch_size", 32)

    def pairs(self):
        return self.engine.pairs()

    def translate(self, sentences, source, target):
        self.seen += sentences
        return self.engine.translate(sentences, source, target)


@pytest.fixture
def apertium():
    return Recorded(make_engine("apertium"))


def test_markdown_inline_markup_stays_inside_one_translated_sentence(apertium):
    text = (
        "Click the **red** button to save. Read the [return policy](https://example.com/returns) "
        "first, then open `settings` now.\n\n- Some *small* changes and <b>bold</b> words.\n"
    )
    done = translate_document(apertium, text, "en", "es", "markdown")
    assert done.text == (
        "Clic el botón **rojo** para salvar. Leído la [póliza de regreso](https://example.com/returns) "
        "primero, entonces abrir `settings` ahora.\n\n- Algunos cambios *pequeños* y palabras <b>intrépidas</b>.\n"
    )
    assert apertium.seen == [  # three engine sentences, each whole, the markup as tokens
        "Click the ⟦0⟧red⟦1⟧ button to save.",
        "Read the ⟦2⟧return policy⟦3⟧ first, then open ⟦4⟧ now.",
        "Some ⟦0⟧small⟦1⟧ changes and ⟦2⟧bold⟦3⟧ words.",
    ]
    assert [s.source for s in done.sentences] == [
        "Click the **red** button to save.",
        "Read the [return policy](https://example.com/returns) first, then open `settings` now.",
        "Some *small* changes and <b>bold</b> words.",
    ]  # reports show the markup, not the tokens
    assert done.sentences[1].text.endswith("abrir `settings` ahora.")


def test_html_inline_elements_stay_inside_one_translated_sentence(apertium):
    html = (
        '<p>Click the <b>red</b> button to save. Read the <a href="https://example.com/returns" '
        'title="The policy">return policy</a> first, then open <code>settings</code> now.</p>'
        "<p>A <em>small <b>dog</b></em> sleeps here.</p><pre>Good morning</pre>"
    )
    done = translate_document(apertium, html, "en", "es", "html")
    assert done.text == (
        '<p>Clic el botón <b>rojo</b> para salvar. Leído la <a href="https://example.com/returns" '
        'title="La póliza">póliza de regreso</a> primero, entonces abrir <code>settings</code> ahora.</p>'
        "<p>Un <em>pequeño <b>perro</b></em> sueños aquí.</p><pre>Good morning</pre>"
    )
    assert "Read the ⟦2⟧return policy⟦3⟧ first, then open ⟦4⟧ now." in apertium.seen
    assert "A ⟦0⟧small ⟦1⟧dog⟦2⟧⟦3⟧ sleeps here." in apertium.seen  # nested elements, one sentence


def test_a_translation_that_loses_a_token_falls_back_to_runs_markup_kept():
    done = translate_document(make_engine("bergamot"), "Click the **red** button.\n", "en", "pt", "markdown")
    assert done.text.count("**") == 2 and "⟦" not in done.text and "Clique" in done.text


def test_masks_restore_only_a_complete_well_ordered_set_of_tokens():
    masked = mask_markdown("See **the [docs](https://x.org/a_b)** and `a*b*c` or mail me@x.org.")
    assert masked.text == "See ⟦0⟧the ⟦1⟧docs⟦2⟧⟦3⟧ and ⟦4⟧ or mail ⟦5⟧."
    assert masked.spans == ["**", "[", "](https://x.org/a_b)", "**", "`a*b*c`", "me@x.org"]
    assert masked.restore("Ver ⟦0⟧los ⟦1⟧documentos⟦2⟧⟦3⟧ y ⟦4⟧ o ⟦5⟧.") == (
        "Ver **los [documentos](https://x.org/a_b)** y `a*b*c` o me@x.org."
    )
    assert masked.restore("Ver ⟦0⟧los documentos⟦2⟧⟦3⟧ y ⟦4⟧ o ⟦5⟧.") is None  # one lost
    assert masked.restore("Ver ⟦3⟧los ⟦1⟧documentos⟦2⟧⟦0⟧ y ⟦4⟧ o ⟦5⟧.") is None  # closed before opened
    assert masked.restore("Ver ⟦0⟧⟦1⟧los⟦3⟧ documentos⟦2⟧ y ⟦4⟧ o ⟦5⟧.") is None  # crossed
    assert mask_markdown("snake_case and 2*3*4 stay").spans == []


def test_a_sentence_wrapped_over_lines_is_translated_whole_and_wrapped_again(apertium):
    text = (
        "Read the [return\npolicy](https://example.com/r) first, because\nit explains how **refunds\n"
        "work**. Thank you.\n\nOne line.\nTwo line.\n"
    )
    done = translate_document(apertium, text, "en", "es", "markdown")
    assert apertium.seen[:2] == [
        "Read the ⟦0⟧return policy⟦1⟧ first, because it explains how ⟦2⟧refunds work⟦3⟧.",
        "Thank you.",
    ]  # the paragraph joined: its first sentence whole
    assert done.text == (
        "Leído la [póliza de\nregreso](https://example.com/r) primero,\nporque  explica cómo **obra de "
        "reembolsos**.\nGracias.\n\nUno tacha.\nDos línea.\n"
    )  # wrapped again at 41 characters; lines that each end a sentence stay lines


def test_apertium_gets_wrapping_tokens_as_spans_that_move_with_their_words():
    from clearlm.translate.apertium import unwrap_tokens, wrap_tokens

    wrapped = wrap_tokens("Press the ⟦0⟧big red⟦1⟧ button & the <x> key, then ⟦2⟧.")
    assert wrapped == 'Press the <span data-k="0,1">big red</span> button &amp; the &lt;x&gt; key, then ⟦2⟧.'
    nested = wrap_tokens("A ⟦0⟧small ⟦1⟧dog⟦2⟧⟦3⟧ sleeps.")
    assert nested == 'A <span data-k="0,3">small <span data-k="1,2">dog</span></span> sleeps.'
    for bare in ("open ⟦0⟧ now.", "Name", "red⟦1⟧ only"):  # no wrapping pair: the plain format
        assert wrap_tokens(bare) is None
    moved = 'Prensa el botón <span data-k="0,1">rojo grande</span> &amp; el &lt;x&gt; tono, entonces ⟦2⟧.'
    assert unwrap_tokens(moved, wrapped) == "Prensa el botón ⟦0⟧rojo grande⟦1⟧ & el <x> tono, entonces ⟦2⟧."
    split = 'Abierto <span data-k="0,1">la</span> página de <span data-k="0,1">encuadres</span>.'
    assert unwrap_tokens(split, wrapped) is None  # doubled: the caller translates the line in plain text
    assert unwrap_tokens("Prensa el botón rojo grande.", wrapped) is None  # lost


def test_apertium_reorders_across_inline_markup_as_across_plain_words(apertium):
    plain = translate_document(apertium, "Click the red button.\n", "en", "es", "markdown").text
    marked = translate_document(apertium, "Click the **red** button.\n", "en", "es", "markdown").text
    assert plain == "Clic el botón rojo.\n" and marked == "Clic el botón **rojo**.\n"


def test_a_span_apertium_splits_sends_the_sentence_back_to_the_tokens(monkeypatch):
    from clearlm.translate.apertium import ApertiumEngine

    engine = ApertiumEngine()
    monkeypatch.setattr(  # as if Apertium had split the span over two words
        engine,
        "_run_html",
        lambda mode, lines: [s.replace("</span>", '</span> <span data-k="0,1">x</span>') for s in lines],
    )
    assert engine.translate(["Click the ⟦0⟧red⟦1⟧ button."], "en", "es") == ["Clic el ⟦0⟧rojo⟦1⟧ botón."]
