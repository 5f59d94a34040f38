"""Push to talk on the chat page, in headless Chromium whose microphone plays a recorded question (Chromium's
fake audio capture: ``--use-file-for-fake-audio-capture``): the question is transcribed and shown, sent as
the message, answered through the governed chat, and the answer is spoken in the page's audio player."""

from __future__ import annotations

import time

import numpy as np
import pytest
from playwright.sync_api import expect

from clearlm.media.wer import normalize_english
from web.conftest import Page

pytestmark = pytest.mark.integration
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory):
    """The question spoken by the Piper voice, the same every run (Whisper heard 1 in 16 of the voice's
    sampled renderings as "capital of friends"), with half a second of silence before and after (a WAV)."""
    from clearlm.media.encode import encode
    from clearlm.media.speech import synthesize

    speech = synthesize(QUESTION, variation=0.0)
    pad = np.zeros(speech.sample_rate // 2, np.float32)
    path = tmp_path_factory.mktemp("voice") / "question.wav"
    path.write_bytes(encode(np.concatenate([pad, speech.samples, pad]), speech.sample_rate, "wav"))
    return path, speech.duration + 1.0


@pytest.fixture(scope="module")
def browser(question_wav):
    """Chromium as tests/conftest.py launches it, plus a fake microphone playing the question once."""
    from conftest import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (make browser installs it)")
    from playwright.sync_api import sync_playwright

    fake = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={question_wav[0]}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + fake, headless=True)
        yield b
        b.close()


def test_a_spoken_question_gets_a_spoken_answer(serve, default_backend, browser, question_wav):
    server = serve(default_backend)
    page = Page(browser, server.base)
    try:
        page.sign_in()
        tab = page.tab
        # the real model, greedy and short: an answer with words to say (a tiny random model's sampled
        # answer was once one unpronounceable character, which the page cannot speak)
        tab.locator("#settings summary").click()
        tab.get_by_label("Temperature (0 to 2)").fill("0")
        tab.get_by_label("Max tokens (empty: the server's default)").fill("12")
        tab.get_by_role("button", name="Save settings").click()
        talk = tab.locator("#talk")
        expect(talk).to_be_enabled()
        talk.hover()
        tab.mouse.down()
        time.sleep(question_wav[1] + 0.5)  # hold while the question plays
        tab.mouse.up()
        expect(tab.locator("#voice-heard")).to_contain_text("Heard (english)", timeout=120_000)
        heard = tab.locator("#voice-heard").inner_text().split(":", 1)[1]
        assert normalize_english(heard) == normalize_english(QUESTION)
        mine = tab.locator('article.msg[data-role="user"]').last
        expect(mine).to_contain_text("capital of France", timeout=60_000)
        answer = tab.locator('article.msg[data-role="assistant"]').last
        expect(answer).not_to_have_class("msg streaming", timeout=120_000)
        records = lambda: server.state.audit.records()  # noqa: E731
        spoken = answer.locator(".msg-body").inner_text().strip()
        assert "Paris" in spoken
        expect(tab.locator("#voice-answer")).to_be_visible(timeout=120_000)
        seconds = tab.evaluate(
            """() => new Promise((ok) => { const a = document.getElementById('voice-answer');
               if (a.readyState >= 1) ok(a.duration); else a.onloadedmetadata = () => ok(a.duration); })"""
        )
        assert seconds > 0.2
        assert tab.evaluate("document.getElementById('voice-answer').src").startswith("blob:")
        [said] = [r for r in records() if r.endpoint == "/v1/audio/speech"]
        assert said.status_code == 200 and said.prompt == spoken
        heard_records = [r for r in records() if r.endpoint == "/v1/audio/transcriptions"]
        assert len(heard_records) == 1 and normalize_english(heard_records[0].prompt) == normalize_english(
            QUESTION
        )
        page.assert_accessible()
        page.screenshot("chat-voice")
    finally:
        page.close()
