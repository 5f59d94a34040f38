"""The studio's state on a real SQLite database (migration 0014): projects, the bible, the outline tree,
versions made by people and by operations, word-level diffs between any two versions, restore, and who
wrote each word; bad input and another tenant's ids."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from clearlm.apps.studio import PERSON, StudioError, StudioNotFoundError
from clearlm.apps.studio.diffs import carry_authors, diff_stats, tokens, word_diff


def test_migration_makes_the_studio_tables(db):
    tables = set(inspect(db.engine).get_table_names())
    assert {"studio_projects", "studio_bible", "studio_nodes", "studio_versions"} <= tables


def test_word_diff_is_by_word_and_gives_both_texts_back():
    old = "Mara opened the heavy door. Rain fell."
    new = "Mara slowly opened the door. Rain fell hard."
    assert "".join(tokens(old)) == old
    ops = word_diff(old, new)
    assert "".join(o.old for o in ops) == old and "".join(o.new for o in ops) == new
    changed = [(o.op, o.old.strip(), o.new.strip()) for o in ops if o.op != "equal"]
    assert changed == [("insert", "", "slowly"), ("delete", "heavy", ""), ("insert", "", "hard")]
    assert diff_stats(ops) == {"added": 2, "removed": 1}
    # one changed word is one replace of that word, not of its letters
    assert [(o.op, o.old, o.new) for o in word_diff("green eyes", "grey eyes") if o.op != "equal"] == [
        ("replace", "green", "grey")
    ]


def test_authors_carry_through_versions():
    first = carry_authors([], "The sea was calm.", "model-a")
    second = carry_authors(first, "The sea was very calm.", PERSON)
    assert [a for t, a in second if t.strip()] == [
        "model-a",
        "model-a",
        "model-a",
        PERSON,
        "model-a",
        "model-a",
    ]


def test_projects_bible_and_outline(studio, project):
    p, scene = project
    projects = studio.projects
    assert [x.title for x in projects.list("acme")] == ["The Keeper"]
    assert projects.list("other") == []
    entries = projects.entries("acme", p.id)
    assert [e.name for e in entries][:2] == ["Mara Voss", "Tobin Reyes"]
    assert entries[0].aliases == ("Mara",)
    tree = projects.outline("acme", p.id)
    assert [n.kind for n in tree] == ["part"] and tree[0].children[0].children[0].id == scene.id
    assert tree[0].children[0].children[0].beats == scene.beats
    second = projects.add_node(
        "acme", p.id, "scene", "Dawn", tree[0].children[0].id, ["Mara counts the money"]
    )
    assert [s.id for s in projects.scenes("acme", p.id)] == [scene.id, second.id]
    assert second.position == 1
    updated = projects.update("acme", p.id, style={"tone": "bleak", "person": "third"})
    assert updated.style == {"tone": "bleak", "person": "third"}


def test_bad_input_and_other_tenants(studio, project):
    p, scene = project
    projects = studio.projects
    with pytest.raises(StudioNotFoundError):
        projects.get("other", p.id)
    with pytest.raises(StudioNotFoundError):
        studio.versions.list("other", p.id, scene.id)
    with pytest.raises(StudioError, match="unknown bible kind"):
        projects.add_entry("acme", p.id, "villain", "X", "y")
    with pytest.raises(StudioError, match="already"):
        projects.add_entry("acme", p.id, "character", "Mara Voss", "again")
    with pytest.raises(StudioError, match="goes under a chapter, not a part"):
        projects.add_node("acme", p.id, "scene", "S", projects.outline("acme", p.id)[0].id)
    with pytest.raises(StudioError, match="title is empty"):
        projects.create("acme", "   ")
    with pytest.raises(StudioError, match="unknown style control"):
        projects.update("acme", p.id, style={"font": "serif"})
    with pytest.raises(StudioError, match="only scenes"):
        studio.versions.add("acme", p.id, projects.outline("acme", p.id)[0].id, "x", PERSON, "edit")


def test_versions_diffs_and_restore(studio, project):
    p, scene = project
    v = studio.versions
    one = v.add("acme", p.id, scene.id, "Tobin knocked twice. Mara opened the door.", "model-x", "draft")
    two = v.edit("acme", p.id, scene.id, "Tobin knocked three times. Mara opened the door.")
    assert v.edit("acme", p.id, scene.id, two.text).number == 2  # unchanged text: no new version
    three = v.edit("acme", p.id, scene.id, "Tobin knocked three times. Mara opened the heavy door.")
    assert [(x.number, x.author, x.operation) for x in v.list("acme", p.id, scene.id)] == [
        (1, "model-x", "draft"), (2, PERSON, "edit"), (3, PERSON, "edit")
    ]  # fmt: skip
    ops = v.diff("acme", p.id, scene.id, 1, 3)
    changes = [(o.op, o.old.strip(), o.new.strip()) for o in ops if o.op != "equal"]
    assert changes == [("replace", "twice", "three times"), ("insert", "", "heavy")]
    restored = v.restore("acme", p.id, scene.id, one.number)
    assert (restored.number, restored.text, restored.detail) == (4, one.text, {"restored": 1})
    assert v.text("acme", p.id, scene.id) == one.text and three.number == 3
    assert {a for t, a in v.authors("acme", p.id, scene.id) if t.strip()} == {"model-x"}  # restored words
    with pytest.raises(StudioNotFoundError, match="no version 9"):
        v.diff("acme", p.id, scene.id, 1, 9)
