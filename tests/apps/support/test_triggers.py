"""The desk's hand-off rules (``apps/support/triggers.py``): VADER's real scores of real sentences against
the defaults, failures and the fallback, ``desk.yaml``; then on the desk with the tiny random model:
three angry messages hand off (negative_sentiment, the item's sentiment < 0), two fallbacks in a row hand
off (repeated_failure), a neutral conversation never does, a non-English customer is not judged by VADER,
a low confidence hands off when the desk sets ``min_confidence``, and a hand-back starts afresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearlm.apps.support import HANDOFF, Customers, Desk, PatternExtractor, TurnRunner, hand_back, load_desk
from clearlm.apps.support.desk import HANDOFF_MESSAGE, WAITING_NOTICE
from clearlm.apps.support.flows import FlowError
from clearlm.apps.support.loading import parse_flow
from clearlm.apps.support.state import CustomerMessage, FlowState
from clearlm.apps.support.triggers import (
    HandoffRules,
    confidence_due,
    failure,
    fell_back,
    load_rules,
    read_signals,
    sentiment,
    sentiment_due,
)
from clearlm.apps.support.turns import TurnOutcome
from clearlm.store import AuditLog, Database
from clearlm.store.review import ReviewQueue

DESK = Path(__file__).parents[3] / "examples" / "support"

# VADER compound scores, measured with vaderSentiment 3.3.2 (the module's docstring quotes them).
NEUTRAL = {
    "Hello, where is my order A-10001?": 0.0,
    "Can you tell me the delivery time to Berlin?": 0.0,
    "no": -0.296,
    "That did not help.": -0.3089,
    "Thanks, what are your opening hours?": 0.4404,
}
ANGRY = {
    "This is ridiculous, my order is late again.": -0.3612,
    "I am really angry, nobody answers my emails!": -0.5974,
    "This is the worst service ever. Terrible!": -0.8172,
}
TROUBLE = {  # bad news the desk is there for: strongly negative, but one alone is no reason for a person
    "I am very disappointed, the kettle arrived broken.": -0.7574,
    "My package was stolen, I am devastated.": -0.802,
}
FURIOUS = "You are useless. I hate this shop, worst experience ever!!!"  # -0.9095

SIZES = """
name: sizes
triggers: [size]
max_invalid: 1
fallback: sorry
steps:
  - id: ask_size
    ask: {slot: size, prompt: "Which size: small, medium or large?", enum: [small, medium, large]}
  - id: done
    end: {message: "Noted."}
  - id: sorry
    say: "Sorry, I did not understand. Let us try once more."
    next: ask_size
"""


@pytest.mark.parametrize(
    "text, score", [*NEUTRAL.items(), *ANGRY.items(), *TROUBLE.items(), (FURIOUS, -0.9095)]
)
def test_vader_scores_the_sentences_the_defaults_were_chosen_on(text, score):
    assert sentiment(text) == pytest.approx(score, abs=1e-4)


def test_the_defaults_hand_off_on_three_angry_messages_or_one_furious_one_and_nothing_else():
    rules = HandoffRules()
    angry, neutral, trouble = list(ANGRY.values()), list(NEUTRAL.values()), list(TROUBLE.values())
    assert sentiment_due(rules, angry)[0] == "negative_sentiment"
    assert sentiment_due(rules, angry[:2]) is None  # two are not sustained
    assert sentiment_due(rules, [*angry[:2], 0.0]) is None  # the latest is calm again
    assert sentiment_due(rules, neutral) is None  # "no" and "That did not help." stay above -0.35
    assert sentiment_due(rules, [0.0, *trouble]) is None  # bad news, not sustained anger
    assert sentiment_due(rules, [0.0, sentiment(FURIOUS)]) == (
        "negative_sentiment",
        "a message scored -0.9095 (VADER compound)",
    )
    assert sentiment_due(HandoffRules(sentiment_strong=None), [sentiment(FURIOUS)]) is None
    assert sentiment_due(HandoffRules(sentiment_window=2), angry[:2])[0] == "negative_sentiment"


def outcome(text, finish="stop", confidence=None):
    return TurnOutcome(text, "r", finish, confidence=confidence)


def test_failures_are_abstentions_and_refused_replies_never_a_fixed_reply():
    assert failure(outcome("The documents do not say. [2]")) == "abstained"
    assert failure(outcome("  ")) is None  # nothing said (the tiny random model does it): not judged
    assert failure(outcome("I can't help with that.", "content_filter")) == "refused"
    assert failure(outcome("Your order ships tomorrow.")) is None
    assert failure(outcome("The documents do not say.", "forced")) is None  # a flow's own words


def test_low_confidence_only_when_the_desk_sets_a_threshold():
    outs = [outcome("a", "forced"), outcome("b", confidence=0.12), outcome("c", confidence=0.9)]
    assert confidence_due(HandoffRules(), outs) is None
    assert confidence_due(HandoffRules(min_confidence=0.3), outs) == (
        "low_confidence",
        "mean token probability 0.1200 < 0.3",
    )
    assert confidence_due(HandoffRules(min_confidence=0.1), outs) is None


def test_the_fallback_is_recognised_when_the_last_try_is_invalid():
    flow = parse_flow(SIZES)
    waiting = FlowState(flow="sizes", step="ask_size", waiting="slot")
    after_bad = waiting.model_copy(update={"step": "ask_size"})
    assert fell_back(flow, waiting, after_bad, CustomerMessage("purple")) is True
    after_good = waiting.model_copy(update={"slots": {"size": "small"}, "step": None, "status": "completed"})
    assert fell_back(flow, waiting, after_good, CustomerMessage("small")) is False
    assert fell_back(flow, waiting, after_bad, CustomerMessage("what sizes?", digression=True)) is False
    assert fell_back(flow, None, after_bad, None) is False
    patient = parse_flow(SIZES.replace("max_invalid: 1", "max_invalid: 3"))
    assert fell_back(patient, waiting, after_bad, CustomerMessage("purple")) is False  # it re-asks


def test_a_desk_folder_overrides_the_rules_in_desk_yaml(tmp_path):
    assert load_rules(tmp_path) == HandoffRules()
    (tmp_path / "desk.yaml").write_text("handoff:\n  sentiment_window: 4\n  min_confidence: 0.25\n")
    assert load_rules(tmp_path) == HandoffRules(sentiment_window=4, min_confidence=0.25)
    (tmp_path / "desk.yaml").write_text("handoff:\n  sentiment: -0.5\n")
    with pytest.raises(FlowError, match="handoff is a mapping of sentiment_window"):
        load_rules(tmp_path)
    (tmp_path / "desk.yaml").write_text("handoff:\n  sentiment_below: -3\n")
    with pytest.raises(FlowError, match="compound score from -1 to 1"):
        load_rules(tmp_path)
    with pytest.raises(FlowError, match="1 or more"):
        HandoffRules(max_failures=0)


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'desk.db'}")
    yield db
    db.close()


def make_desk(db, backend, rules=None, flows=None) -> Desk:
    returns, tools = load_desk(DESK)
    runner = TurnRunner(backend, AuditLog(db), None, max_tokens=4)
    return Desk(db, runner, {**returns, **(flows or {})}, tools, extractor=PatternExtractor(), rules=rules)


def chat(desk, db, texts, language="en"):
    ada = Customers(db).create("acme", "Ada", language)
    cid = desk.open_conversation("acme", ada.id).conversation.id
    return cid, [desk.customer_message("acme", cid, t) for t in texts]


def items(db):
    return ReviewQueue(db).list("acme", "open", HANDOFF)


def test_three_angry_messages_hand_off_with_their_sentiment(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    cid, replies = chat(desk, db, [*ANGRY, "Hello?"])
    assert [r.handoff for r in replies[:2]] == [None, None]
    assert replies[2].handoff["reason"] == "negative_sentiment"
    assert replies[2].messages[-1].text == HANDOFF_MESSAGE  # the customer is told
    assert replies[2].conversation.status == "handed_off"
    assert replies[3].notice == WAITING_NOTICE and [m.role for m in replies[3].messages] == ["customer"]
    (item,) = items(db)
    assert item.payload["reason"] == "negative_sentiment"
    assert item.payload["sentiment"] == pytest.approx(sum(ANGRY.values()) / 3, abs=1e-4)  # -0.592
    assert item.payload["sentiment"] < 0
    assert [s for _, s in read_signals(db, "acme", cid).sentiment] == list(ANGRY.values())  # not "Hello?"


def test_two_fallbacks_in_a_row_hand_off_as_repeated_failure(db, tiny_backend):
    desk = make_desk(db, tiny_backend, flows={"sizes": parse_flow(SIZES)})
    _, replies = chat(desk, db, ["I need another size", "purple", "green"])
    assert replies[0].messages[-1].text == "Which size: small, medium or large?"
    assert replies[1].handoff is None and replies[1].fell_back
    assert replies[1].messages[1].text == "Sorry, I did not understand. Let us try once more."
    assert replies[2].handoff["reason"] == "repeated_failure"
    assert replies[2].handoff["detail"] == "2 failed turns in a row (this one: fallback)"
    assert replies[2].messages[-1].text == HANDOFF_MESSAGE
    assert replies[2].flow["status"] == "handed_off"
    (item,) = items(db)
    assert item.payload["reason"] == "repeated_failure" and item.payload["sentiment"] == 0.0


def test_a_valid_answer_between_two_fallbacks_ends_the_run(db, tiny_backend):
    two_asks = SIZES.replace(
        "  - id: done\n",
        "  - id: ask_colour\n    ask: {slot: colour, prompt: 'Which colour?', enum: [red, blue]}\n  - id: done\n",
    )
    desk = make_desk(db, tiny_backend, flows={"sizes": parse_flow(two_asks)})
    _, replies = chat(desk, db, ["I need another size", "purple", "small", "huge"])
    assert [r.fell_back for r in replies] == [False, True, False, True]
    assert replies[-1].messages[-1].text == "Which colour?"
    assert [r.handoff for r in replies] == [None] * 4 and not items(db)


def test_a_neutral_conversation_never_hands_off(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    cid, replies = chat(desk, db, [*NEUTRAL, "ok, thanks"])
    assert [r.handoff for r in replies] == [None] * 6
    assert replies[-1].conversation.status == "open" and not items(db)
    scored = [o.confidence for r in replies for o in r.outcomes if o.confidence is not None]
    assert scored and max(scored) < 0.01  # a random model's tokens: about 1/300 (its vocabulary)


def test_a_customer_not_writing_english_is_not_judged_by_vader(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    angry_de = [  # ANGRY and FURIOUS in German (English words would make the customer English: translation)
        "Das ist lächerlich, meine Bestellung ist schon wieder zu spät.",
        "Ich bin wirklich wütend, niemand beantwortet meine E-Mails!",
        "Das ist der schlechteste Service überhaupt. Schrecklich!",
        "Ihr seid nutzlos. Ich hasse diesen Laden, die schlimmste Erfahrung überhaupt!!!",
    ]
    cid, replies = chat(desk, db, angry_de, language="de")
    assert [r.handoff for r in replies] == [None] * 4 and not items(db)
    assert read_signals(db, "acme", cid).sentiment == []
    replies = [desk.customer_message("acme", cid, "Ich möchte bitte mit einem Menschen sprechen, a human")]
    (item,) = items(db)
    assert item.payload["reason"] == "customer_asked" and item.payload["sentiment"] is None


def test_a_low_confidence_reply_hands_off_when_the_desk_sets_min_confidence(db, tiny_backend):
    desk = make_desk(db, tiny_backend, rules=HandoffRules(min_confidence=0.2))
    _, (reply,) = chat(desk, db, ["Hello, where is my order A-10001?"])
    assert reply.handoff["reason"] == "low_confidence"
    assert reply.handoff["detail"].startswith("mean token probability 0.00")  # a random model: ~1/vocab
    assert (
        reply.outcomes[0].confidence < 0.01
        and [m.role for m in reply.messages] == ["customer"] + ["assistant"] * 2
    )


def test_after_a_hand_back_earlier_anger_does_not_count_again(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    cid, replies = chat(desk, db, list(ANGRY))
    assert replies[-1].handoff["reason"] == "negative_sentiment"
    for text in list(ANGRY)[1:]:  # while a person has the chat: not scored
        assert desk.customer_message("acme", cid, text).notice == WAITING_NOTICE
    assert len(read_signals(db, "acme", cid).sentiment) == 3
    hand_back(db, "acme", cid, "agent")
    again = desk.customer_message("acme", cid, "This is ridiculous, my order is late again.")
    assert again.handoff is None and again.conversation.status == "open"
    assert read_signals(db, "acme", cid).failures == 0
