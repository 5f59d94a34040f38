"""The support desk's memory at turn 2 and at turn 501 of a customer's history (issue 15: "turn 501 of a
long history costs about what turn 2 costs": at most 1.5x).

In one SQLite database, a customer with ``--turns`` earlier turns (500: 1,000 messages in conversations
of 10 turns, written through ``SupportConversations``, no model) and, each repetition, two new ones with 1
and 12 earlier turns (so they stay at turn 2 and turn 13). Each repetition writes each one's next message
(a question about an order their history mentioned at its start) and times ``CustomerMemory.context``
(the desk's ``_context``): the verbatim window, the candidates, their ranking with all-MiniLM-L6-v2 (the
two messages new since the last turn embedded, as on a desk), the rolling summary; the arms' order
alternates. The long history grows by one turn a repetition. Reported: medians and p90 in milliseconds,
the part spent embedding and the rest (SQL, ranking, notes), the SELECT statements and rows each build
read, the ratio of the medians (turn 501 / turn 2; also of the rest alone, which the embedding of the
same two short texts in every arm does not blur), and the first build after a restart (every candidate
embedded; not in the ratio).

With ``--model``, also a pipeline turn: the context built and a reply of at most 8 tokens generated
through the desk's ``TurnRunner`` (greedy; no policy, no audit log), at turn 2 and at turn 501, with
the prompt's tokens. The prompt is longer at 501 (twelve messages and the notes against three), so that
ratio holds the prompt's length (prefill) as well as the memory's cost: turn 13 (a full verbatim window,
one earlier conversation) is the steady state to compare with.

    python benchmarks/bench_support_memory.py                             # 500 turns, 21 repetitions
    python benchmarks/bench_support_memory.py --turns 50 --repeats 5      # seconds (the test runs this)
    python benchmarks/bench_support_memory.py --model qwen2.5-0.5b-instruct
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

from clearlm.apps.support import Customers, SupportConversations, TurnRunner
from clearlm.apps.support.memory import CustomerMemory
from clearlm.knowledge.base import default_embedder
from clearlm.store import Database
from clearlm.store.tables import SupportConversationRow, SupportMessageRow

SYSTEM = "You are the support assistant of a shop. The customer's language (ISO 639-1): en."
TENANT = "bench"
PER_CONVERSATION = 10  # turns
FIRST = "Hello, my order A-10001 (a blue kettle) arrived with a cracked lid. What can you do?"
SMALL_TALK = [
    ("Do you have the garden chair in green?", "We have it in green and in grey."),
    ("How long does delivery to Lisbon take?", "Usually three to five working days."),
    ("Can I pay by bank transfer?", "Yes, bank transfers and cards are accepted."),
    ("Is the lamp shade washable?", "Yes, by hand at 30 degrees."),
    ("Do you ship to Switzerland?", "We do, with customs fees paid on delivery."),
]
QUESTIONS = [
    "Any news on my order A-10001?",
    "Did the replacement for A-10001 ship yet?",
    "About A-10001: will I get a refund for the cracked kettle?",
]


def seed(conversations: SupportConversations, customer_id: str, turns: int) -> str:
    """``turns`` turns (a customer message and a reply each) in conversations of 10 turns; returns the
    last conversation's id."""
    cid = ""
    for turn in range(turns):
        if turn % PER_CONVERSATION == 0:
            cid = conversations.open(TENANT, customer_id).id
        ask, answer = (FIRST, "Sorry to hear that.") if turn == 0 else SMALL_TALK[turn % len(SMALL_TALK)]
        conversations.append_message(TENANT, cid, "customer", f"{ask} ({turn})")
        conversations.append_message(TENANT, cid, "assistant", f"{answer} ({turn})")
    return cid


class TimedEmbedder:
    """The packaged embedder, adding the seconds its ``encode`` takes to ``seconds``."""

    def __init__(self) -> None:
        self.embedder, self.seconds = default_embedder(), 0.0

    def encode(self, texts):
        start = time.perf_counter()
        try:
            return self.embedder.encode(texts)
        finally:
            self.seconds += time.perf_counter() - start


class Reads:
    """SELECT statements and ORM rows read while it is on (SQLAlchemy events), and the seconds spent
    embedding."""

    def __init__(self, db: Database, embedder: TimedEmbedder) -> None:
        self.embedder = embedder
        self.statements = self.rows = 0
        self.on = False
        event.listen(db.engine, "before_cursor_execute", self._statement)
        for table in (SupportMessageRow, SupportConversationRow):
            event.listen(table, "load", self._row)

    def _statement(self, _conn, _cursor, sql: str, *_) -> None:
        self.statements += self.on and sql.lstrip().upper().startswith("SELECT")

    def _row(self, *_) -> None:
        self.rows += self.on

    def measure(self, build) -> tuple[float, int, int, float]:
        """(seconds, statements, rows, seconds embedding) of ``build()``."""
        self.statements = self.rows = 0
        self.embedder.seconds = 0.0
        self.on = True
        start = time.perf_counter()
        build()
        seconds = time.perf_counter() - start
        self.on = False
        return seconds, self.statements, self.rows, self.embedder.seconds


FRESH = {"turn_2": 1, "turn_13": 12}  # arms of a new customer each repetition: earlier turns


def run(turns: int, repeats: int, model: str | None, db_path: Path) -> dict:
    db = Database(f"sqlite:///{db_path}")
    conversations, customers = SupportConversations(db), Customers(db)
    embedder = TimedEmbedder()
    memory = CustomerMemory(db, embedder=lambda: embedder)
    reads = Reads(db, embedder)
    runner = None
    if model is not None:
        from clearlm.models import load_backend

        runner = TurnRunner(load_backend(model), max_tokens=8)
    started = time.perf_counter()
    long = customers.create(TENANT, "Long history")
    long_cid = seed(conversations, long.id, turns)
    seed_s = time.perf_counter() - started
    first_s, *_ = reads.measure(lambda: memory.recall(TENANT, long.id))  # after a restart: all embedded
    conversations.append_message(TENANT, long_cid, "assistant", "Let me check.")
    last = f"turn_{turns + 1}"
    arms: dict[str, list] = {name: [] for name in (*FRESH, last)}
    pipeline: dict[str, list] = {name: [] for name in arms}
    prompt_tokens: dict[str, int] = {}
    for i in range(repeats):
        question = f"{QUESTIONS[i % len(QUESTIONS)]} ({i})"
        order = [(last, long.id, long_cid)]
        for name, earlier in FRESH.items():
            customer = customers.create(TENANT, f"{name} {i}")
            cid = seed(conversations, customer.id, earlier)
            memory.recall(TENANT, customer.id)  # the turn before, as the desk built it
            conversations.append_message(TENANT, cid, "assistant", "Let me check.")
            order.append((name, customer.id, cid))
        for arm, customer_id, conversation_id in order[::-1] if i % 2 else order:  # alternated
            conversations.append_message(TENANT, conversation_id, "customer", question)
            arms[arm].append(reads.measure(lambda c=customer_id: memory.context(TENANT, c, SYSTEM)))
            if runner is not None:
                context = memory.context(TENANT, customer_id, SYSTEM)
                start = time.perf_counter()
                runner.generate(TENANT, conversation_id, context)
                pipeline[arm].append(time.perf_counter() - start + arms[arm][-1][0])
                prompt_tokens[arm] = len(runner.backend.encode(context).token_ids)
            if arm == last:
                conversations.append_message(TENANT, conversation_id, "assistant", "Let me check.")
    db.close()
    result = {
        "turns": turns,
        "repeats": repeats,
        "arms": list(arms),
        "seed_s": round(seed_s, 2),
        "first_build_after_restart_ms": round(first_s * 1000, 2),
    }
    for arm, runs in arms.items():
        times = sorted(run[0] * 1000 for run in runs)
        rest = [(run[0] - run[3]) * 1000 for run in runs]
        result[arm] = {
            "median_ms": round(statistics.median(times), 3),
            "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 3),
            "embedding_median_ms": round(statistics.median(run[3] * 1000 for run in runs), 3),
            "rest_median_ms": round(statistics.median(rest), 3),
            "statements": max(run[1] for run in runs),
            "rows": max(run[2] for run in runs),
        }
        if runner is not None:
            result[arm]["pipeline_median_ms"] = round(statistics.median(pipeline[arm]) * 1000, 1)
            result[arm]["prompt_tokens"] = prompt_tokens[arm]
    result["ratio"] = round(result[last]["median_ms"] / result["turn_2"]["median_ms"], 3)
    for base in FRESH:
        ratio = result[last]["rest_median_ms"] / result[base]["rest_median_ms"]
        result[f"rest_ratio_to_{base}"] = round(ratio, 3)
    if runner is not None:
        for base in FRESH:
            ratio = result[last]["pipeline_median_ms"] / result[base]["pipeline_median_ms"]
            result[f"pipeline_ratio_to_{base}"] = round(ratio, 3)
        result["model"] = model
    return result


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    last = result["arms"][-1].replace("_", " ")
    table = Table(title=f"support memory: the context at turn 2, 13 and {last} ({result['repeats']} runs)")
    for col in ("turn", "median ms", "p90 ms", "of it embedding", "the rest", "SELECTs", "rows read"):
        table.add_column(col, justify="right")
    pipeline = "model" in result
    if pipeline:
        table.add_column(f"pipeline turn ms ({result['model']})", justify="right")
        table.add_column("prompt tokens", justify="right")
    for arm in result["arms"]:
        r = result[arm]
        cells = [arm.replace("_", " "), f"{r['median_ms']:.2f}", f"{r['p90_ms']:.2f}"]
        cells += [f"{r['embedding_median_ms']:.2f}", f"{r['rest_median_ms']:.2f}"]
        cells += [str(r["statements"]), str(r["rows"])]
        if pipeline:
            cells += [f"{r['pipeline_median_ms']:.0f}", str(r["prompt_tokens"])]
        table.add_row(*cells)
    Console(width=160).print(table)
    print(f"ratio {last} / turn 2 (medians, the context): {result['ratio']:.2f}x (goal <= 1.5x)")
    to_2, to_13 = result["rest_ratio_to_turn_2"], result["rest_ratio_to_turn_13"]
    print(f"  the rest alone (SQL, ranking, notes): {last} / turn 2 {to_2:.2f}x, / turn 13 {to_13:.2f}x")
    if pipeline:
        to_2, to_13 = result["pipeline_ratio_to_turn_2"], result["pipeline_ratio_to_turn_13"]
        print(f"pipeline turn ratio {last} / turn 2: {to_2:.2f}x, / turn 13: {to_13:.2f}x")
    print(
        f"seeded {result['turns']} turns in {result['seed_s']:.1f} s; first build after a restart "
        f"{result['first_build_after_restart_ms']:.0f} ms (every candidate embedded once)"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=500, help="earlier turns of the long history")
    parser.add_argument("--repeats", type=int, default=21, help="timed builds per arm")
    parser.add_argument("--model", help="also time a pipeline turn on this chat model (catalog name)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    default_embedder().encode(["warm up"])
    with tempfile.TemporaryDirectory(prefix="support-memory-") as tmp:
        result = run(args.turns, args.repeats, args.model, Path(tmp) / "desk.db")
    print(json.dumps(result), file=sys.stderr)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
