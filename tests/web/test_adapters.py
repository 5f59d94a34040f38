"""The adapters page in headless Chromium against a real server serving a tiny LoRA adapter (trained in the
fixture with two domain questions over a real knowledge base): the figures on the page are the card's and
the report's, the page is accessible, and "Chat with it" opens the chat on the adapter's model."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from clearlm.tune import TuneConfig, read_card, tune
from clearlm.tune.answers import QuestionSet
from clearlm.tune.questions import Question
from tune_fixtures import apt_docs, email_policy_now, long_tiny_base

CONFIG = TuneConfig(
    steps=3, seq_len=32, learning_rate=2e-2, warmup_steps=0, checkpoint_every=0, eval_tokens=64
)
QUESTIONS = (
    Question("purge", "How do I delete a package and its configuration?", "apt purge", ("apt purge",)),
    Question("sources", "What does the sources list name?", "The archive mirrors.", ("mirrors",)),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_tokenizer):
    """Under a module-wide $CLEARLM_HOME: adapter "apt" with the four-way table, and "plain" (no questions,
    not served)."""
    from clearlm.knowledge import KnowledgeBase
    from clearlm.knowledge.base import default_embedder

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARLM_HOME", str(tmp_path_factory.mktemp("home")))
        base = long_tiny_base(tiny_tokenizer)
        docs = apt_docs(tmp_path_factory.mktemp("docs"))
        with KnowledgeBase.create("apt-docs", embedder=default_embedder()) as kb:
            kb.add(docs)
            asked = QuestionSet(QUESTIONS, kb, k=2, max_new_tokens=4)
            tune("apt", base, docs, CONFIG, policy=email_policy_now(), questions=asked)
        tune("plain", base, docs, CONFIG, policy=email_policy_now())
        yield base


def texts(locator) -> list[str]:
    return [" ".join(t.split()) for t in locator.all_inner_texts()]


def test_the_adapters_page_shows_the_figures_and_chats_with_the_adapter(trained, serve, open_page):
    from clearlm.tune.router import AdapterRouter

    server = serve(AdapterRouter(trained, ["apt"]), model="tiny-random-qwen2")
    _, secret = server.state.keys.create("alice", tenant="acme", scope="admin")
    card = read_card("apt")
    f, qa = card["figures"], card["report"]["questions"]
    page = open_page(server)
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.sign_in(secret, "/adapters")
    tab = page.tab
    expect(tab.get_by_role("link", name="Adapters")).to_have_attribute("aria-current", "page")
    expect(tab.locator("section.adapter")).to_have_count(2)
    apt = tab.locator("#adapter-apt")
    page.screenshot("adapters")  # the top of the page: the first adapter's facts, sources and perplexities

    # base, data hashes, perplexities before and after with the change in %
    assert apt.locator(".base-hash").inner_text() == card["base"]["weights_sha256"]
    assert texts(apt.locator("table.sources td code.hash")) == [s["sha256"] for s in card["data"]["sources"]]
    for key in ("domain", "general"):
        row = apt.locator(f"table.perplexity tr[data-text={key}]")
        m = f[key]
        assert row.locator(".before").inner_text() == f"{m['before']['perplexity']:.2f}"
        assert row.locator(".after").inner_text() == f"{m['after']['perplexity']:.2f}"
        assert row.locator(".change").inner_text() == f"{m['change']:+.1%}"

    # the four-way table: means and each question's answers, as the report holds them
    setups = ["base", "tuned", "base+kb", "tuned+kb"]
    assert texts(apt.locator("table.questions").first.locator("thead th"))[1:] == setups
    means = apt.locator("tr.mean-f1 td")
    assert texts(means) == [f"{qa['means'][s]['f1']:.2f}" for s in setups]
    assert texts(apt.locator("tr.mean-key td")) == [f"{qa['means'][s]['key_recall']:.2f}" for s in setups]
    for row in qa["rows"]:
        cells = apt.locator(f"tr[data-question={row['id']}] td")
        assert texts(cells.locator(".answer")) == [
            " ".join(row["answers"][s]["text"].split()) for s in setups
        ]
        scores = [f"{row['answers'][s]['f1']:.2f} / {row['answers'][s]['key_recall']:.2f}" for s in setups]
        assert texts(cells.locator(".scores")) == scores
    assert "knowledge base apt-docs (2 passages each)" in " ".join(apt.inner_text().split())

    # the card, and the links: chat (served) and the attribution comparison
    assert apt.locator(".intended-use").inner_text() == card["intended_use"]
    assert texts(apt.locator(".limitations li")) == card["limitations"]
    apt.locator(".hyperparameters summary").click()
    assert f"rank\n{card['hyperparameters']['rank']}" in apt.locator(".hyperparameters dl").inner_text()
    assert apt.locator("a.compare").get_attribute("href") == "/adapters/apt/compare"
    plain = tab.locator("#adapter-plain")
    expect(plain.locator(".badge")).to_have_text("not served here")
    assert plain.locator("a.chat-with").count() == 0 and plain.locator("table.questions").count() == 0
    page.assert_accessible()

    # "Chat with it": the chat page picks the adapter's model from /v1/models and answers with it
    apt.get_by_role("link", name="Chat with it").click()
    tab.wait_for_url(re.compile(r"/chat\?model=tiny-random-qwen2(%3A|:)apt$"))
    expect(tab.locator("#set-model option")).to_have_text(["tiny-random-qwen2", "tiny-random-qwen2:apt"])
    expect(tab.locator("#set-model")).to_have_value("tiny-random-qwen2:apt")
    tab.get_by_label("Message", exact=True).fill("How do I purge a package?")
    tab.get_by_label("Message", exact=True).press("Enter")
    answer = tab.locator("article.msg[data-role=assistant]").last
    expect(answer.locator(".badge.ai")).to_have_text("AI-generated · tiny-random-qwen2:apt", timeout=60_000)
    expect(tab.locator("#send")).to_be_enabled(timeout=60_000)
    [record] = [
        r for r in server.state.audit.records() if r.endpoint.startswith("/v1/conversations/") and r.model
    ]
    assert record.model == "tiny-random-qwen2:apt" and record.status_code == 200
    assert not page.errors, page.errors
