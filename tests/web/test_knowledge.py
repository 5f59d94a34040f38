"""The knowledge pages in headless Chromium against a real server: create a knowledge base (a bad name's
message shown), upload by the file picker and by drag and drop with per-file results (an unsupported file
named as skipped with its reason), browse files and chunks, remove a file, search with mode, k and MMR; a
document's markup shows as text; and citations.js on a cited answer: [n] buttons open the passage with the
matched sentence highlighted, passages shaded by weight with their flags. axe finds nothing serious."""

from __future__ import annotations

import math

import pytest
from playwright.sync_api import expect

GUIDE = """# Clinic handbook

## Opening hours

The clinic opens at 8 am and closes at 6 pm on weekdays. On Saturdays it opens from 9 am to noon.

## Parking

Parking is free for patients in the car park behind the clinic. Bicycles go in the rack by the door.
"""
BILLING = "Invoices are sent by email at the end of each month. Payment is due within thirty days.\n"
XSS = 'Evil <img src=x onerror="window.pwned=1"> and <script>window.pwned=2</script> text.\n'


@pytest.fixture
def server(serve, tiny_backend, tmp_path, monkeypatch):
    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    return serve(tiny_backend, embedder=load_embedder(), files_dir=str(tmp_path / "uploads"))


def _page(server, open_page):
    """A Page whose tab answers Chromium's own /favicon.ico request (the server has none: a 404 that the
    browser logs as a console error)."""
    page = open_page(server)
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    return page


def _file(name: str, text: str | bytes, mime: str = "text/plain") -> dict:
    data = text.encode() if isinstance(text, str) else text
    return {"name": name, "mimeType": mime, "buffer": data}


def test_knowledge_pages(server, open_page):
    page = _page(server, open_page)
    tab = page.tab
    failed = []
    tab.on("response", lambda r: r.status >= 400 and failed.append((r.status, r.url.split("/", 3)[3])))
    page.sign_in(None, "/knowledge")
    tab.wait_for_url("**/knowledge")
    tab.locator("#kb-table td", has_text="None yet").wait_for()
    page.assert_accessible()

    tab.get_by_label("Name").fill("bad name!")
    tab.get_by_role("button", name="Create").click()
    error = tab.locator("#kb-create-error")
    error.filter(has_text="knowledge base name").wait_for()
    assert tab.get_by_label("Name").get_attribute("aria-invalid") == "true"
    page.screenshot("knowledge-list")
    tab.get_by_label("Name").fill("clinic")
    tab.get_by_label("Chunk size (tokens)").fill("32")
    tab.get_by_label("Overlap (tokens)").fill("0")
    tab.get_by_role("button", name="Create").click()
    tab.wait_for_url("**/knowledge/clinic")
    tab.locator("#files td", has_text="No files yet").wait_for()
    page.assert_accessible()

    # two documents and an unsupported file through the (keyboard-usable) file picker
    big = _file("big.txt", b"x" * (16 * 2**20 + 1))  # past the limit: skipped before it is sent
    tab.locator("#file-input").set_input_files(
        [_file("handbook.md", GUIDE), _file("billing.txt", BILLING), _file("tool.exe", b"MZ\x90\x00"), big]
    )
    rows = tab.locator("#uploads li[data-status]")
    rows.nth(3).wait_for()
    results = {r.get_attribute("data-file"): r.inner_text() for r in rows.all()}
    assert "added · 2 chunks" in results["handbook.md"] and "added · 1 chunk" in results["billing.txt"]
    assert "skipped: unsupported type .exe" in results["tool.exe"]
    assert "skipped: too large: a file is at most 16 MiB" in results["big.txt"]
    tab.locator("#files tr[data-file='handbook.md']").wait_for()
    assert tab.locator("#files tbody tr").count() == 2
    assert tab.locator("#kb-counts").inner_text() == "2 files, 3 chunks"
    assert f"{len(GUIDE)} B" in tab.locator("#files tr[data-file='handbook.md']").inner_text()

    # drag and drop: a document whose markup must stay text
    tab.evaluate(
        """(text) => {
            const dt = new DataTransfer();
            dt.items.add(new File([text], "evil.txt", {type: "text/plain"}));
            document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
        }""",
        XSS,
    )
    tab.locator("#uploads li[data-file='evil.txt'][data-status='added']").wait_for()
    tab.locator("#files tr[data-file='evil.txt']").wait_for()

    # the chunks browser: all files, then one file's
    tab.locator("#kb-counts", has_text="3 files").wait_for()
    chunks = int(tab.locator("#kb-counts").inner_text().split(", ")[1].split()[0])
    assert chunks >= 4
    tab.locator("#chunk-range").filter(has_text=f"1–{chunks} of {chunks}").wait_for()
    assert tab.locator("#chunks li").count() == chunks
    evil = "".join(tab.locator("#chunks li", has_text="evil.txt").all_inner_texts())
    assert '<img src=x onerror="window.pwned=1">' in evil and "<script>window.pwned=2</script>" in evil
    assert tab.evaluate("window.pwned") is None and tab.locator("#chunks img, #chunks script").count() == 0
    tab.get_by_label("Chunks of handbook.md").click()
    tab.locator("#chunk-range").filter(has_text="1–2 of 2").wait_for()
    heads = tab.locator("#chunks .chunk-head").all_inner_texts()
    assert all(h.startswith("handbook.md") for h in heads) and "Opening hours" in heads[0]

    # the search playground
    tab.get_by_label("Query").fill("When does the clinic open on Saturdays?")
    tab.get_by_label("Mode").select_option("bm25")
    tab.get_by_label("Passages (k)").fill("2")
    tab.get_by_role("button", name="Search").click()
    hits = tab.locator("#search-results li.hit")
    hits.first.wait_for()
    assert hits.count() == 2 and "Saturdays" in hits.first.inner_text()
    assert hits.first.locator(".score").inner_text().startswith("BM25 ")
    tab.get_by_label("Mode").select_option("hybrid")
    tab.get_by_label("Diversify (MMR)").check()
    tab.get_by_label("MMR lambda").fill("0.3")
    tab.get_by_role("button", name="Search").click()
    tab.locator("#search-results .score", has_text="RRF score").first.wait_for()
    tab.get_by_label("MMR lambda").fill("2")
    tab.get_by_role("button", name="Search").click()
    tab.locator("#search-results .error").filter(has_text="less than or equal to 1").wait_for()

    # remove a file (confirmed)
    tab.once("dialog", lambda d: d.accept())
    tab.get_by_label("Remove billing.txt").click()
    tab.locator("#files tr[data-file='billing.txt']").wait_for(state="detached")
    assert tab.locator("#kb-counts").inner_text() == f"2 files, {chunks - 1} chunks"
    page.assert_accessible()
    tab.evaluate("window.scrollTo(0, 0)")
    page.screenshot("knowledge")
    # the browser logs each refused request as a console error: the only ones are the two refusals above
    assert sorted(failed) == [(400, "v1/kb"), (400, "v1/kb/clinic/search")]
    assert (
        page.errors
        == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"] * 2
    )

    sent = [r.parameters["files"] for r in server.state.audit.records() if r.endpoint.endswith("/upload")]
    assert sent == [["handbook.md"], ["billing.txt"], ["tool.exe"], ["evil.txt"]]  # one request a file

    missing = page.goto("/knowledge/nowhere")
    assert missing.status == 404 and "No knowledge base named" in tab.locator("h1").inner_text()


def _cited() -> dict:
    """A deterministic CitedAnswer dict (the shape chat completions return with knowledge_base)."""
    from clearlm.knowledge.answer import CitedAnswer, PassageSupport, parse_citations
    from clearlm.knowledge.passage import Passage

    texts = [
        "The clinic opens at 8 am on weekdays. On Saturdays it opens from 9 am to noon.",
        "Parking is free for patients behind the clinic. Bicycles go in the rack.",
        "Invoices arrive by email <b>monthly</b>. Payment is due within thirty days.",
    ]
    passages = [
        Passage(f"c{i:019d}", t, f"doc{i}.md", f"Doc {i}", ("Handbook", f"Part {i}"), 0, len(t))
        for i, t in enumerate(texts, start=1)
    ]
    text = "On Saturdays the clinic opens at 9 am [1]. Parking is free [2][4]."
    citations, unknown = parse_citations(text, 3)
    support = [
        PassageSupport(1, True, 2.1, math.nan, math.nan, True, None),
        PassageSupport(2, True, 0.1, math.nan, math.nan, False, "cited_not_relied"),
        PassageSupport(3, False, 0.9, math.nan, math.nan, True, "relied_not_cited"),
    ]
    cited = CitedAnswer(
        "When is it open on Saturdays?", text, "tiny", "stop", passages, citations, unknown, support
    )
    return cited.to_dict()


def test_citations_open_their_passage_with_the_claim_highlighted(server, open_page):
    page = _page(server, open_page)
    tab = page.tab
    page.sign_in(None, "/knowledge")
    tab.wait_for_url("**/knowledge")
    tab.add_script_tag(url="/static/citations.js")
    tab.add_style_tag(url="/static/citations.css")
    cited = _cited()
    tab.evaluate(
        """(cited) => {
            const body = clearlm.el("div", {class: "msg-body"},
                clearlm.el("p", {}, "On Saturdays the clinic opens at ", clearlm.el("strong", {}, "9 am"),
                    " [1]. Parking is free [2][4]."),
                clearlm.el("pre", {}, clearlm.el("code", {}, "x = a[1]")));
            const article = clearlm.el("article", {class: "msg", dataset: {role: "assistant"}}, body);
            document.querySelector("main").append(article);
            window.clearlmCitations.render(article, cited);
        }""",
        cited,
    )
    article = tab.locator("article.msg")
    assert article.locator("button.cite").all_inner_texts() == ["1", "2"]
    assert article.locator("pre").inner_text() == "x = a[1]"  # code is left alone
    assert article.locator(".cite.unknown").inner_text().startswith("4")

    # the sources list: shaded by weight, flags visible
    items = article.locator("ol.sources li")
    assert items.count() == 3
    assert items.nth(0).evaluate("n => getComputedStyle(n).getPropertyValue('--shade').trim()") == "0.450"
    assert "cited but not relied on" in items.nth(1).inner_text()
    assert "relied on but not cited" in items.nth(2).inner_text()
    assert items.nth(1).get_attribute("class") == "pos"

    # keyboard: focus [1], Enter opens the dialog with the matched sentence highlighted
    article.get_by_role("button", name="Passage 1: Handbook › Part 1").focus()
    tab.keyboard.press("Enter")
    dialog = tab.get_by_role("dialog")
    dialog.wait_for()
    assert "Passage [1]" in dialog.locator("h2").inner_text()
    assert dialog.locator("mark.cited-span").inner_text() == "On Saturdays it opens from 9 am to noon."
    assert set(dialog.locator("mark .match").all_inner_texts()) == {"Saturdays", "opens", "9", "am"}
    assert "“On Saturdays the clinic opens at 9 am”" in dialog.locator(".claim").inner_text()
    page.assert_accessible()
    page.screenshot("citation")
    tab.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert tab.evaluate("document.activeElement.dataset.passage") == "1"  # focus back on the citation

    # [2]: its claim ends at the previous sentence; passage 3 (not cited) from the list; markup is text
    article.get_by_role("button", name="Passage 2: Handbook › Part 2").click()
    assert dialog.locator("mark.cited-span").inner_text() == "Parking is free for patients behind the clinic."
    dialog.locator("button.source[data-passage='3']").click()
    assert "Passage [3]" in dialog.locator("h2").inner_text()
    assert "<b>monthly</b>" in dialog.locator(".passage-text").inner_text()
    assert dialog.locator(".passage-text b").count() == 0
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="hidden")
    assert not page.errors


@pytest.fixture(scope="module")
def long_backend(tiny_tokenizer):
    """The tiny random model with a context long enough for a prompt holding passages."""
    import importlib.util
    from pathlib import Path

    from clearlm.models.backends.torch_backend import TorchBackend

    # tests/conftest.py's make_model (here `conftest` is tests/web/conftest.py)
    spec = importlib.util.spec_from_file_location(
        "_tests_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    root = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root)
    return TorchBackend(root.make_model(tiny_tokenizer, context=4096), tiny_tokenizer, "tiny-random-qwen2")


def test_a_chat_answer_from_a_knowledge_base_cites_its_passages(
    serve, long_backend, tmp_path, monkeypatch, open_page
):
    """The chat page with a knowledge base: a real turn (the tiny model's words are random) lists the
    passages it was given under the answer; a stored answer citing [1] (a deterministic CitedAnswer over
    the same passages) opens passage 1 with the sentence its claim matched highlighted."""
    import httpx2 as httpx

    from clearlm.knowledge.answer import CitedAnswer, PassageSupport, parse_citations
    from clearlm.knowledge.passage import Passage
    from clearlm.models.embeddings import load_embedder
    from clearlm.store.conversations import Conversations

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    server = serve(long_backend, embedder=load_embedder(), files_dir=str(tmp_path / "uploads"))
    c = httpx.Client(base_url=server.base, timeout=300)
    c.post("/v1/kb", json={"name": "clinic", "chunk_tokens": 64, "overlap": 0})
    assert (
        c.post("/v1/kb/clinic/upload", files=[("files", ("handbook.md", GUIDE.encode()))]).json()["added"]
        == 1
    )
    settings = {"knowledge_base": "clinic", "max_tokens": 6, "temperature": 0}
    conv = c.post("/v1/conversations", json={"title": "Clinic", "settings": settings}).json()

    page = _page(server, open_page)
    tab = page.tab
    page.sign_in(None, f"/chat/{conv['id']}")
    tab.locator("#prompt").fill("When does the clinic open on Saturdays?")
    tab.locator("#send").click()
    answer = tab.locator("article.msg[data-role='assistant']").last
    # streamed, then the reliance measured: the passages listed with their ablation weights
    expect(answer.locator(".citations-panel")).to_contain_text("relied on from", timeout=120_000)
    listed = answer.locator(".citations-panel").inner_text()
    assert "Opening hours" in listed and "weight " in listed and "Not measured" not in listed

    # a stored answer citing [1], over the knowledge base's own passages
    chunks = c.get("/v1/kb/clinic/chunks").json()["data"]
    passages = [
        Passage(
            x["chunk_id"], x["text"], x["path"], x["title"], tuple(x["heading_path"]), x["start"], x["end"]
        )
        for x in chunks
    ]
    text = "On Saturdays the clinic opens at 9 am [1]."
    citations, unknown = parse_citations(text, len(passages))
    support = [
        PassageSupport(i + 1, i == 0, 1.5 if i == 0 else 0.0, math.nan, math.nan, i == 0, None)
        for i in range(len(passages))
    ]
    cited = CitedAnswer("When?", text, "tiny", "stop", passages, citations, unknown, support).to_dict()
    store = Conversations(server.state.db)
    store.append_message(conv["id"], "user", "When?")
    store.append_message(conv["id"], "assistant", text, meta={"citations": cited})
    page.goto(f"/chat/{conv['id']}")
    last = tab.locator("article.msg[data-role='assistant']").last
    last.get_by_role("button", name="Passage 1: Clinic handbook › Opening hours").click()
    dialog = tab.get_by_role("dialog")
    dialog.wait_for()
    assert dialog.locator("mark.cited-span").inner_text() == "On Saturdays it opens from 9 am to noon."
    page.assert_accessible()
    page.screenshot("chat-citation")
    tab.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert not page.errors


def test_a_chat_set_to_quote_the_documents_answers_with_the_passage_sentence(
    serve, long_backend, tmp_path, monkeypatch, open_page
):
    """Settings > "Quoted from the documents": the answer is the passage's own sentence and its
    citation, and the citation opens the passage with that sentence highlighted (no model words)."""
    import httpx2 as httpx

    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    server = serve(long_backend, embedder=load_embedder(), files_dir=str(tmp_path / "uploads"))
    c = httpx.Client(base_url=server.base, timeout=300)
    c.post("/v1/kb", json={"name": "clinic", "chunk_tokens": 64, "overlap": 0})
    c.post("/v1/kb/clinic/upload", files=[("files", ("handbook.md", GUIDE.encode()))])
    conv = c.post("/v1/conversations", json={"title": "Clinic", "settings": {"knowledge_base": "clinic"}})
    page = _page(server, open_page)
    tab = page.tab
    page.sign_in(None, f"/chat/{conv.json()['id']}")
    tab.locator("#settings summary").click()
    tab.get_by_label("Its answers").select_option("extract")
    tab.get_by_role("button", name="Save settings").click()
    expect(tab.get_by_text("Settings saved")).to_have_count(1)
    tab.locator("#prompt").fill("When does the clinic open on Saturdays?")
    tab.locator("#send").click()
    answer = tab.locator("article.msg[data-role='assistant']").last
    expect(answer.locator(".msg-body")).to_contain_text("On Saturdays it opens from 9 am to noon. [1]")
    expect(answer.locator(".citations-panel")).to_contain_text("Opening hours", timeout=120_000)
    # two sentences of passage 1, each cited: the second citation marks the second sentence
    buttons = answer.get_by_role("button", name="Passage 1: Clinic handbook › Opening hours")
    expect(buttons).to_have_count(2)
    buttons.last.click()
    dialog = tab.get_by_role("dialog")
    dialog.wait_for()
    assert dialog.locator("mark.cited-span").inner_text() == "On Saturdays it opens from 9 am to noon"
    tab.keyboard.press("Escape")
    buttons.first.click()
    assert dialog.locator("mark.cited-span").inner_text().startswith("The clinic opens at 8 am")
    page.assert_accessible()
    assert not page.errors
    stored = c.get(f"/v1/conversations/{conv.json()['id']}").json()
    assert stored["settings"]["knowledge_answer"] == "extract"
