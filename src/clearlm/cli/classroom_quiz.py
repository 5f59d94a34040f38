"""``clearlm classroom quiz``: generate quiz questions from a knowledge base, list them, approve or reject
them, export the approved ones as rubric files for ``clearlm classroom grade``.

Questions are kept in the database (``--db``) of the ``default`` tenant, pending until a teacher decides
(here, on the ``/classroom/quizzes`` page or through ``/v1/review``). Bad input (an unknown knowledge base,
an empty one, a count out of range) ends in one message and exit status 1, before any model is loaded.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from clearlm.cli.common import DB, console, err_console
from clearlm.models import DEFAULT_MODEL

app = typer.Typer(
    help="Quiz questions from a knowledge base, approved by a teacher before use.", no_args_is_help=True
)
TENANT = "default"
KB_DB = typer.Option(
    None, "--kb-db", help="PostgreSQL URL holding the knowledge bases (default: the embedded index)"
)


def _load(model: str):
    """The model to write questions with (a seam for tests)."""
    from clearlm.cli.common import load

    return load(model)


def _book(db: str | None):
    from clearlm.apps.classroom.quiz_store import QuizBook
    from clearlm.store import AuditLog, Database

    database = Database(db)
    return QuizBook(database, AuditLog(database))


def _show(questions) -> None:
    table = Table(show_lines=True)
    table.add_column("id", no_wrap=True, min_width=19)
    for column in ("status", "question", "answer key", "cited passage"):
        table.add_column(column, overflow="fold")
    for q in questions:
        c = q.citation
        where = f"{Path(c['path']).name} · chunk {c['chunk_id'][:8]}\n“{c['quote']}”"
        table.add_row(q.id, q.status, escape(q.question), escape(q.answer), escape(where))
    console.print(table)


@app.command("generate")
def generate(
    kb: str = typer.Argument(..., help="the knowledge base's name"),
    topic: str = typer.Option(None, "--topic", "-t", help="what the questions are about (default: any)"),
    n: int = typer.Option(5, "-n", "--n", help="how many questions (1-20)"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="catalog name, local folder or .gguf"),
    seed: int = typer.Option(0, "--seed", help="the order passages are tried in, without a topic"),
    kb_db: str = KB_DB,
    db: str = DB,
) -> None:
    """Write up to N questions from KB's passages (about TOPIC), each with an answer key, a rubric and
    the passage it cites; unsupported keys and near-duplicates are dropped and counted. The questions
    wait for a teacher's approval."""
    from clearlm.apps.classroom.quiz import QuizGenerator, check_n, check_topic, pick_passages
    from clearlm.knowledge import KnowledgeBase

    check_n(n)
    topic = check_topic(topic)
    book = _book(db)
    with KnowledgeBase.open(kb, url=kb_db) as base:
        with err_console.status("finding passages ..."):
            pick_passages(base, n, topic, seed)  # an empty knowledge base fails before the model loads
        backend = _load(model)
        generator = QuizGenerator(backend, book.audit, tenant=TENANT)
        with err_console.status(f"writing up to {n} questions ..."):
            result = generator.generate(base, n, topic, seed, book.held_questions(TENANT, kb))
    stored = book.save(TENANT, result)
    if stored:
        _show(stored)
    counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(result.dropped_counts.items()))
    err_console.print(
        f"{len(stored)} question(s) kept from {result.tried} passage(s), pending approval; "
        f"dropped: {counts or 'none'}"
    )


@app.command("list")
def list_(
    status: str = typer.Option(None, "--status", help="pending, approved or rejected (default: all)"),
    kb: str = typer.Option(None, "--kb", help="only this knowledge base's questions"),
    db: str = DB,
) -> None:
    """List the quiz questions, oldest first."""
    questions = _book(db).list(TENANT, status, kb)
    if not questions:
        err_console.print("no quiz questions: write some with `clearlm classroom quiz generate KB`")
        return
    _show(questions)


@app.command("approve")
def approve(
    question_id: str = typer.Argument(..., help="the question's id (qz_...)"),
    question: str = typer.Option(None, "--question", help="the question, edited"),
    answer: str = typer.Option(None, "--answer", help="the answer key, edited"),
    note: str = typer.Option(None, "--note", help="why (audited)"),
    db: str = DB,
) -> None:
    """Approve a pending question (optionally editing it or its key); audited."""
    q = _book(db).decide(question_id, TENANT, "approve", "local", question, answer, note)
    err_console.print(
        f"{q.id} approved" + (f" (edited: {', '.join(q.decision['edited'])})" if q.decision["edited"] else "")
    )


@app.command("reject")
def reject(
    question_id: str = typer.Argument(..., help="the question's id (qz_...)"),
    note: str = typer.Option(None, "--note", help="why (audited)"),
    db: str = DB,
) -> None:
    """Reject a pending question; audited."""
    q = _book(db).decide(question_id, TENANT, "reject", "local", note=note)
    err_console.print(f"{q.id} rejected")


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", "-o", help="the folder to write the rubric files in"),
    kb: str = typer.Option(None, "--kb", help="only this knowledge base's questions"),
    db: str = DB,
) -> None:
    """Write each approved question as a rubric YAML (OUT/<id>.yaml) for `clearlm classroom grade`."""
    paths = _book(db).export_rubrics(TENANT, out, kb)
    err_console.print(f"{len(paths)} rubric file(s) [dim]->[/] {escape(str(out))}")
