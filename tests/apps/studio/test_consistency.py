"""Consistency with the bible on a real scene (written for this test): the rules flag a changed eye colour
and a changed year with both passages side by side, and nothing in a faithful version; pronouns are
resolved to the character named before; the retrieval-plus-model pass runs its turns (tiny model); context
attribution names the entries that shaped a paragraph. (The default qwen2.5-0.5b-instruct does not tell the
drifted eye colour from the faithful one as a yes/no judge, P(yes) 0.229 vs 0.235, so no integration test
asserts it: the rules carry this check on that model.)"""

from __future__ import annotations

import pytest

from clearlm.apps.studio import StudioError
from clearlm.apps.studio.attribution import paragraphs
from clearlm.apps.studio.consistency import rule_flags
from clearlm.store import AuditLog

FAITHFUL = (
    "The storm had been building since noon. By nightfall the waves were breaking over the sea wall of Brisk "
    "Harbour, and the lamp turned above them as it had every night since it was first lit in 1931.\n\n"
    "Mara Voss heard the knock before the wind took it. She climbed down the iron stairs, one hand on the rail, "
    "and opened the door a crack. Tobin stood there, soaked, his cap in his fist.\n\n"
    '"I have the money," he said. Mara looked at him for a long moment. Her green eyes gave nothing away. '
    "Then she let him in."
)
DRIFTED = FAITHFUL.replace("first lit in 1931", "first lit in 1928").replace(
    "Her green eyes gave nothing away.", "Her blue eyes gave nothing away."
)


def test_rules_flag_the_changed_facts_side_by_side(studio, project):
    p, _ = project
    entries = studio.projects.entries("acme", p.id)
    assert rule_flags(FAITHFUL, entries) == []
    flags = rule_flags(DRIFTED, entries)
    got = [(f.entry["name"], f.attribute, f.bible_value, f.scene_value) for f in flags]
    assert got == [
        ("Brisk Harbour", "year lit", "1931", "1928"),
        ("Mara Voss", "eye colour", "green", "blue"),
    ]
    year, eyes = flags
    assert year.bible == "Its lighthouse was designed by Anika Brandt and first lit in 1931."
    assert DRIFTED[year.start : year.end] == year.scene and "1928" in year.scene
    assert eyes.bible.startswith("She has green eyes") and eyes.scene == "Her blue eyes gave nothing away."
    assert DRIFTED[eyes.start : eyes.end] == eyes.scene  # "Her": Mara, the character named before


def test_check_on_a_stored_scene_runs_the_rules_and_the_model_turns(studio, project):
    p, scene = project
    studio.versions.edit("acme", p.id, scene.id, DRIFTED)
    rules_only = studio.check(p.id, scene.id, use_model=False)
    assert [f.method for f in rules_only.flags] == ["rule", "rule"] and rules_only.pairs_asked == 0
    assert {e["name"] for e in rules_only.entries} == {
        "Brisk Harbour",
        "Mara Voss",
        "Tobin Reyes",
        "House style",
    }
    full = studio.check(p.id, scene.id, threshold=0.0, max_pairs=3)  # every pair asked is flagged at 0
    assert full.pairs_asked == 3
    model_flags = [f for f in full.flags if f.method == "model"]
    assert len(model_flags) + full.unanswered == 3 and all(0 <= f.p_contradiction <= 1 for f in model_flags)
    assert all(f.request_id for f in model_flags) and all(f.similarity >= 0.2 for f in model_flags)
    checks = [r for r in AuditLog(studio.projects.db).records(tenant="acme") if r.endpoint == "studio:check"]
    assert len(checks) == 3 and checks[0].parameters["logprobs"] == 20


def test_attribution_names_the_entries_that_shaped_a_paragraph(studio, project):
    p, scene = project
    studio.versions.edit("acme", p.id, scene.id, FAITHFUL)
    assert len(paragraphs(FAITHFUL)) == 3
    out = studio.attribute(p.id, scene.id, 2, ablations=16)
    assert out["paragraph"]["text"].startswith('"I have the money,"')
    # the scene names Brisk Harbour, Mara and Tobin; the style guide always enters: 4 sources, 2^4 = 16 subsets
    assert {e["name"] for e in out["entries"]} == {"Brisk Harbour", "Mara Voss", "Tobin Reyes", "House style"}
    assert out["exact"] is True
    weights = [e["weight"] for e in out["entries"]]
    assert weights == sorted(weights, reverse=True)  # LASSO keeps only effects above its alpha (0.01)
    assert all(e["drop"] is not None for e in out["entries"])  # every leave-one-out ablation was scored
    assert any(abs(e["drop"]) > 0 for e in out["entries"]) and out["full_score"] < 0
    [record] = [
        r for r in AuditLog(studio.projects.db).records(tenant="acme") if r.endpoint == "studio:attribute"
    ]
    assert record.status_code == 200 and record.parameters["forced_target"] is True
    with pytest.raises(StudioError, match="3 paragraph"):
        studio.attribute(p.id, scene.id, 7)
