"""Sentences, streams, glossaries and quality on real engines: the segmenter on abbreviations, decimals
and initials; a stream fed a character at a time gives each sentence once it is complete, with its
latency; a glossary term an engine did not keep is reported for its sentence; back-translation
similarity with the packaged MiniLM flags a wrong translation."""

from __future__ import annotations

import pytest

from clearlm.translate import (
    GlossaryError,
    SentenceStream,
    make_engine,
    parse_glossary,
    split_sentences,
    translate_stream,
    translate_text,
)
from clearlm.translate.glossary import load_glossary


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Dr. Smith paid 3.5 euros. It arrived, e.g. on Monday! Fine?",
         ["Dr. Smith paid 3.5 euros.", "It arrived, e.g. on Monday!", "Fine?"]),
        ("Visit example.com today. Version 2.1.3 is out.", ["Visit example.com today.", "Version 2.1.3 is out."]),
        ("J. R. R. Tolkien wrote it. The U.S. Army came.", ["J. R. R. Tolkien wrote it.", "The U.S. Army came."]),
        ('He said "Stop." Then he left. Approx. five people came.',
         ['He said "Stop."', "Then he left.", "Approx. five people came."]),
        ("¿Dónde está? ¡Aquí! Vale...", ["¿Dónde está?", "¡Aquí!", "Vale..."]),
        ("A title\n\nA paragraph without an end\nthat goes on.", ["A title", "A paragraph without an end\nthat goes on."]),
        ("No end here", ["No end here"]),
    ],
)  # fmt: skip
def test_sentences_are_split_where_they_end(text, sentences):
    assert split_sentences(text) == sentences


def test_a_stream_gives_each_sentence_as_soon_as_it_is_complete():
    stream, got = SentenceStream(), []
    for n, ch in enumerate("Hello Mr. Brown. The price is 3.5 dollars. Is it ok? Yes"):
        got += [(n, s) for s in stream.feed(ch)]
    # a sentence is given when the space after its end arrives: "Mr. " and "3." do not end one
    assert got == [(16, "Hello Mr. Brown."), (42, "The price is 3.5 dollars."), (52, "Is it ok?")]
    assert stream.pending == " Yes" and stream.close() == ["Yes"]


def test_streaming_translation_reports_each_sentence_and_its_latency():
    pieces = ["Good morn", "ing, my friend. The ca", "t is on the table", ". Bye"]
    done = list(translate_stream(make_engine("apertium"), pieces, "en", "es"))
    assert [(d.index, d.source, d.text) for d in done] == [
        (0, "Good morning, my friend.", "Buenos días, mi amigo."),
        (1, "The cat is on the table.", "El gato es en la mesa."),
        (2, "Bye", "Adiós"),
    ]
    assert all(0 < d.latency < 30 for d in done)
    assert set(done[0].to_dict()) == {"index", "source", "text", "latency_s", "missing_terms"}


def test_a_glossary_term_the_engine_did_not_keep_is_reported_for_its_sentence():
    glossary = parse_glossary("order number: número de pedido\nrefund: reembolso\n")
    done = translate_text(
        make_engine("apertium"), "Your refund is ready.\nSend the order number.", "en", "es", glossary
    )
    assert done.text == "Vuestro reembolso está a punto.\nEnviar el número de orden."  # lines kept
    assert [s.missing_terms for s in done.sentences][0] == []
    assert [m.to_dict() for m in done.sentences[1].missing_terms] == [
        {"source": "order number", "target": "número de pedido"}
    ]
    assert done.flagged == [1]


def test_glossaries_read_yaml_lists_and_csv_and_say_what_is_wrong(tmp_path):
    assert parse_glossary("- {source: Refund, target: reembolso}\n").terms == {"Refund": "reembolso"}
    csv = tmp_path / "terms.csv"
    csv.write_text("source,target\norder number,número de pedido\nrefund,reembolso\n", encoding="utf-8")
    glossary = load_glossary(csv)
    assert glossary.terms == {"order number": "número de pedido", "refund": "reembolso"}
    # longest first, whole words, case-insensitive, plurals
    assert glossary.found("Two Order Numbers and a refund") == {
        "order number": "número de pedido",
        "refund": "reembolso",
    }
    assert glossary.found("refunded") == {}
    assert [i.target for i in glossary.check("Your refund", "Su Reembolso")] == []
    with pytest.raises(GlossaryError, match="line 2 is not 'source term,target term'"):
        parse_glossary("a,b\nlonely\n")
    with pytest.raises(GlossaryError, match="term 'refund' has no translation"):
        parse_glossary("refund:\n")
    with pytest.raises(GlossaryError, match="cannot read the glossary"):
        load_glossary(tmp_path / "missing.yaml")


@pytest.mark.integration
def test_back_translation_similarity_flags_a_wrong_translation():
    from clearlm.models.embeddings import load_embedder
    from clearlm.translate import estimate_quality

    sources = ["Where is my order? It has not arrived yet.", "The cat is sleeping on the sofa.", ""]
    translations = ["¿Dónde está mi pedido? Todavía no ha llegado.", "Mañana lloverá en Madrid.", ""]
    out = estimate_quality(sources, translations, make_engine("apertium"), "en", "es", load_embedder())
    assert out[0].similarity > 0.5 and not out[0].flagged  # Apertium back: "Where it is my request?"
    assert out[1].similarity < 0.5 and out[1].flagged and "Madrid" in out[1].back
    assert out[2].similarity == 1.0 and not out[2].flagged
