"""The studio's operations on a tiny random model through real pipeline turns (audited): which bible
entries enter the context (bible injection), the versions each operation makes, rewrite of a selection,
tone controls, brainstorm alternatives, a chapter summarised into memory, the outline's validation."""

from __future__ import annotations

import json

import pytest

from clearlm.apps.studio import StudioError
from clearlm.apps.studio.bible import in_context, mentioned
from clearlm.apps.studio.outline import OutlineError, outline_from_premise, parse_outline
from clearlm.store import AuditLog


def records(studio, endpoint: str):
    return [r for r in AuditLog(studio.projects.db).records(tenant="acme") if r.endpoint == endpoint]


def test_mentions_pick_entries_by_name_or_alias_on_word_boundaries(studio, project):
    p, _ = project
    entries = studio.projects.entries("acme", p.id)
    found = mentioned(entries, "At the harbour, Tobin waited.", "Mara's lamp. A Marathon in Oskelton.")
    assert [(m.entry.name, m.matched) for m in found] == [("Brisk Harbour", "the harbour"), ("Tobin Reyes", "Tobin"),
                                                         ("Mara Voss", "Mara")]  # fmt: skip
    assert [e.name for e in in_context(entries, "nobody here")] == ["House style"]  # style entries: always


def test_draft_injects_the_mentioned_entries_and_makes_a_version(studio, project):
    p, scene = project
    result = studio.writer.draft("acme", p.id, scene.id, words=20)
    # the beats name Tobin and Mara: they enter, with the style guide; Brisk Harbour and Oskel do not
    assert [b["name"] for b in result.bible] == ["Tobin Reyes", "Mara Voss", "House style"]
    [record] = records(studio, "studio:draft")
    prompt = record.prompt[-1]["content"]
    assert "owes Mara money" in prompt and "green eyes" in prompt and "Short sentences" in prompt
    assert "cable car" not in prompt and "Anika Brandt" not in prompt
    assert "fiction writing assistant" in record.parameters["instructions"]
    v = result.version
    assert (v.number, v.author, v.operation) == (1, "tiny-random-qwen2", "draft")
    assert v.text == record.output.strip() and v.detail["request_id"] == record.request_id
    assert v.detail["bible"] == [b["id"] for b in result.bible]


def test_continue_rewrite_and_tone_each_make_a_version(studio, project):
    p, scene = project
    w = studio.writer
    studio.versions.edit("acme", p.id, scene.id, "Tobin knocked at the door. The wind was loud. Mara waited.")
    studio.projects.update("acme", p.id, style={"tone": "tense"})
    cont = w.continue_scene("acme", p.id, scene.id, words=10)
    assert cont.version.text.startswith("Tobin knocked at the door. The wind was loud. Mara waited. ")
    assert cont.version.number == 2 and cont.version.operation == "continue"
    start = cont.version.text.index("The wind")
    end = start + len("The wind was loud.")
    new = w.rewrite("acme", p.id, scene.id, start, end, "more formal")
    text = new.version.text
    assert text.startswith("Tobin knocked at the door. ") and text.endswith(cont.version.text[end:])
    d = new.version.detail
    assert (d["instruction"], d["selection"], d["replaced"]) == (
        "more formal",
        [start, end],
        "The wind was loud.",
    )
    a, b = d["replacement"]
    assert text[a:b] == new.texts[0].strip()
    [record] = records(studio, "studio:rewrite")
    assert "Tone: tense." in record.parameters["instructions"]
    assert "Rewrite only the passage: more formal" in record.prompt[-1]["content"]
    toned = w.restyle("acme", p.id, scene.id, {"tone": "playful", "person": "first"})
    assert toned.version.operation == "tone" and toned.version.number == 4
    [record] = records(studio, "studio:tone")
    assert "Tone: playful." in record.parameters["instructions"]
    assert "Point of view: first person." in record.parameters["instructions"]
    with pytest.raises(StudioError, match="not inside the scene"):
        w.rewrite("acme", p.id, scene.id, 5, 10_000, "shorter")
    with pytest.raises(StudioError, match="instruction is empty"):
        w.rewrite("acme", p.id, scene.id, 0, 5, "  ")


def test_brainstorm_gives_n_alternatives_and_stores_nothing(studio, project):
    p, scene = project
    result = studio.writer.brainstorm("acme", p.id, "What does Tobin hide?", n=3, words=8, seed=1)
    assert len(result.texts) == 3 and len(set(result.texts)) == 3  # sampled with seeds 1, 2, 3
    assert [b["name"] for b in result.bible] == ["Tobin Reyes", "House style"]
    assert studio.versions.list("acme", p.id, scene.id) == []
    with pytest.raises(StudioError, match="1 to 8"):
        studio.writer.brainstorm("acme", p.id, "x", n=9)


def test_summarise_a_chapter_into_the_bible_memory(studio, project):
    p, scene = project
    with pytest.raises(StudioError, match="has text yet"):
        studio.writer.summarise("acme", p.id, scene.parent_id)
    studio.versions.edit("acme", p.id, scene.id, "Tobin paid Mara back in silver coins.")
    first = studio.writer.summarise("acme", p.id, scene.parent_id, words=10)
    entry = first.entry
    assert (entry.kind, entry.name, entry.source) == ("memory", "Memory: Storm", scene.parent_id)
    assert entry.text == first.texts[0].strip()
    again = studio.writer.summarise("acme", p.id, scene.parent_id, words=10)
    assert again.entry.id == entry.id  # replaced, not duplicated
    assert [e.name for e in studio.projects.entries("acme", p.id)].count("Memory: Storm") == 1
    [_, record] = records(studio, "studio:summarise")
    assert "silver coins" in record.prompt[-1]["content"]


def test_outline_validation_and_a_cut_off_outline(studio, project):
    p, _ = project
    good = {"parts": [{"title": "One", "chapters": [{"title": "Storm", "scenes": [
        {"title": "Knock", "beats": ["Tobin knocks", " "]}]}]}]}  # fmt: skip
    assert parse_outline(json.dumps(good))[0]["chapters"][0]["scenes"][0]["beats"] == ["Tobin knocks"]
    with pytest.raises(OutlineError, match="no valid 'scenes' list at part 1 chapter 1"):
        parse_outline(json.dumps({"parts": [{"title": "One", "chapters": [{"title": "x", "scenes": []}]}]}))
    before = studio.projects.outline("acme", p.id)
    # the random model's JSON (constrained to the schema) does not end within 24 tokens
    with pytest.raises(OutlineError, match="cut off"):
        outline_from_premise(studio.writer, "acme", p.id, max_tokens=24)
    [record] = records(studio, "studio:outline")
    assert record.output.startswith("{") and "json_output" in record.parameters
    assert len(studio.projects.outline("acme", p.id)) == len(before)  # nothing added
