"""The writing studio's page in headless Chromium against a real server (tiny model, SQLite): open a
project, pick a scene in the outline tree, draft it from its beats (the bible entries in the context are
named), rewrite a selection, compare the two versions word by word, restore the first; axe finds nothing
serious and the console stays clean; a person's edit that contradicts the bible is flagged with both
passages side by side."""

from __future__ import annotations

import pytest
import torch
from playwright.sync_api import expect

from clearlm.apps.studio import Studio

DRIFT = "The wind rose over the harbour. Mara opened the door a crack. Her blue eyes gave nothing away."


@pytest.fixture
def studio_server(serve, tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    backend = TorchBackend(
        make_model(tiny_tokenizer, torch.float32, context=4096), tiny_tokenizer, "tiny-random-qwen2"
    )
    server = serve(backend)
    _, secret = server.state.keys.create("writer", tenant="acme", scope="user")
    st = Studio(server.state.db, "acme")
    p = st.projects.create("acme", "The Keeper", "A lighthouse keeper hides a debt.")
    st.projects.add_entry("acme", p.id, "character", "Mara Voss", "Mara Voss has green eyes.", ["Mara"])
    st.projects.add_entry("acme", p.id, "place", "Oskel", "A mountain village.")
    part = st.projects.add_node("acme", p.id, "part", "Part One")
    chapter = st.projects.add_node("acme", p.id, "chapter", "Storm", part.id)
    scene = st.projects.add_node("acme", p.id, "scene", "The knock", chapter.id, ["Mara opens the door"])
    return server, secret, st, p, scene


def test_draft_rewrite_diff_restore(studio_server, open_page):
    server, secret, st, p, scene = studio_server
    page = open_page(server)
    page.sign_in(secret, f"/studio?project={p.id}")
    tab = page.tab
    tab.locator(f'[data-scene="{scene.id}"]').click()
    expect(tab.locator("#studio-scene-title")).to_have_text("Scene: The knock")
    tab.get_by_label("Words").fill("12")
    tab.get_by_role("button", name="Draft from beats").click()
    versions = tab.locator("#studio-versions li")
    expect(versions).to_have_count(1)
    expect(tab.locator("#studio-context")).to_have_text("Bible entries in the model's context: Mara Voss")
    first = st.versions.get("acme", p.id, scene.id, 1).text
    expect(tab.get_by_label("Scene text")).to_have_value(first)
    end = min(20, len(first))
    tab.locator("#studio-text").evaluate(f"t => {{ t.focus(); t.setSelectionRange(0, {end}); }}")
    tab.get_by_label("Rewrite it").fill("shorter")
    tab.get_by_role("button", name="Rewrite selection").click()
    expect(versions).to_have_count(2)
    second = st.versions.get("acme", p.id, scene.id, 2)
    assert (second.operation, second.detail["selection"]) == ("rewrite", [0, end])
    assert second.text.endswith(first[end:])  # the text after the selection is kept
    tab.get_by_role("button", name="Show diff").click()
    diff = tab.locator("#studio-diff")
    expect(diff.locator("p")).to_contain_text("v1 → v2")
    assert diff.locator("ins, del").count() >= 1
    assert "".join(diff.locator("ins").all_inner_texts()) in second.text
    page.assert_accessible()
    tab.get_by_role("button", name="Restore version 1").click()
    expect(versions).to_have_count(3)
    expect(tab.get_by_label("Scene text")).to_have_value(first)
    assert [v.operation for v in st.versions.list("acme", p.id, scene.id)] == ["draft", "rewrite", "restore"]
    # a person's edit that contradicts the bible: the check shows both passages side by side
    tab.get_by_label("Scene text").fill(DRIFT)
    tab.get_by_role("button", name="Check against the bible").click()
    flag = tab.locator(".studio-flag", has_text="eye colour")
    expect(flag).to_contain_text("eye colour: green in the bible, blue in the scene", timeout=90_000)
    expect(flag.locator("blockquote").nth(0)).to_have_text("Mara Voss has green eyes.")
    expect(flag.locator("blockquote").nth(1)).to_have_text("Her blue eyes gave nothing away.")
    assert st.versions.current("acme", p.id, scene.id).author == "person"  # the edit was saved first
    expect(versions).to_have_count(4)
    page.assert_accessible()
    page.screenshot("studio")
    assert page.errors == []
