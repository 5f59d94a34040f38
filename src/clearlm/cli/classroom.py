"""``clearlm classroom``: grade a batch of answers against a rubric, export a rubric's grades, build a
course's knowledge base for its chat tutor (``kb``).

Grades are kept in the database (``--db``, default under ``$CLEARLM_HOME``) of the ``default`` tenant, so
a rerun resumes (answers graded before for that rubric version are skipped) and the server's teacher page
(``/classroom/grading``) shows the same grades. Every bad input (an unreadable file, a missing column, a
bad rubric) is checked before a model is loaded and ends in one message and exit status 1.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from clearlm.cli.common import DB, err_console, progress_bar
from clearlm.errors import InvalidInputError
from clearlm.models import DEFAULT_MODEL
from clearlm.paths import write_text_atomic

app = typer.Typer(help="The classroom: grade answers against a rubric, export grades.", no_args_is_help=True)
TENANT = "default"


def _load(model: str):
    """The model to grade with (a seam for tests)."""
    from clearlm.cli.common import load

    return load(model)


def _policy(path: Path | None):
    if path is None:
        return None
    from clearlm.govern import load_policy

    return load_policy(path)


def _check_out(out: Path | None) -> None:
    if out is not None and not out.parent.is_dir():
        raise InvalidInputError(f"cannot write {out}: the folder {out.parent} does not exist")


@app.command("grade")
def grade(
    rubric_file: Path = typer.Argument(..., help="the rubric (YAML)"),
    answers_file: Path = typer.Argument(..., help="CSV or JSONL with the columns id, learner, answer"),
    out: Path = typer.Option(None, "--out", "-o", help="also write the rubric's grades and feedback as CSV"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="catalog name, local folder or .gguf"),
    policy: Path = typer.Option(None, "--policy", help="a policy YAML (how answers are stored: redaction)"),
    db: str = DB,
) -> None:
    """Grade every answer of ANSWERS_FILE under RUBRIC_FILE (with evidence); grades that need a teacher
    go to the review queue. A rerun skips the answers graded before for this rubric version."""
    from clearlm.apps.classroom.gradebook import Gradebook
    from clearlm.apps.classroom.gradebook_io import read_answers
    from clearlm.apps.classroom.grading import Grader
    from clearlm.apps.classroom.rubrics import load_rubric
    from clearlm.store import AuditLog, Database

    rubric = load_rubric(rubric_file)
    answers = read_answers(answers_file)
    _check_out(out)
    rules = _policy(policy)
    database = Database(db)
    audit = AuditLog(database)
    backend = _load(model)
    with err_console.status("loading the embedder and the injection scanner ..."):
        grader = Grader(backend, audit, rules)
    book = Gradebook(database, grader, rules, audit)
    with progress_bar() as bar:
        task = bar.add_task(f"grading {escape(rubric.id)}", total=len(answers))
        result = book.grade_batch(TENANT, rubric, answers, lambda done, _: bar.update(task, completed=done))
    review = sum(1 for g in result.graded if g.status == "in_review")
    err_console.print(
        f"{len(result.graded)} graded ({review} to review), {len(result.skipped)} graded before, "
        f"{len(result.errors)} failed"
    )
    for answer_id, message in result.errors.items():
        err_console.print(f"  [red]{escape(answer_id)}[/]: {escape(message)}")
    if out is not None:
        write_text_atomic(out, book.export_csv(TENANT, rubric.id))
        err_console.print(f"[dim]->[/] {escape(str(out))}")


@app.command("export")
def export(
    rubric_id: str = typer.Argument(..., help="the rubric's id"),
    out: Path = typer.Option(..., "--out", "-o", help="the CSV to write"),
    db: str = DB,
) -> None:
    """Write the rubric's grades and feedback (every version) as CSV."""
    from clearlm.apps.classroom.gradebook import Gradebook
    from clearlm.store import Database

    _check_out(out)
    book = Gradebook(Database(db))
    grades = book.list(TENANT, rubric_id)
    if not grades:
        raise InvalidInputError(
            f"no grades for the rubric {rubric_id!r}: grade answers with clearlm classroom grade"
        )
    write_text_atomic(out, book.export_csv(TENANT, rubric_id))
    err_console.print(f"{len(grades)} grades [dim]->[/] {escape(str(out))}")


@app.command("kb")
def kb(
    course_file: Path = typer.Argument(..., help="the course (YAML) whose knowledge_base to build"),
    paths: list[Path] = typer.Argument(..., help="files and folders of notes (.md, .txt, .html, .pdf)"),
    tenant: str = typer.Option(TENANT, "--tenant", help="the learners' tenant (the server opens it there)"),
    kb_db: str = typer.Option(None, "--kb-db", help="a PostgreSQL URL (pgvector); default: embedded"),
) -> None:
    """Build the knowledge base the course's chat tutor answers from: create it (named by the course's
    knowledge_base) in the tenant if it is missing, and add the notes; unchanged files are skipped."""
    from clearlm.apps.classroom.items import load_course
    from clearlm.apps.classroom.tutor_chat import build_knowledge_base

    course = load_course(course_file)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InvalidInputError(f"no such file or folder: {', '.join(missing)}")
    report = build_knowledge_base(course, paths, tenant=tenant, url=kb_db)
    for warning in report.warnings:
        err_console.print(f"[yellow]{escape(warning)}[/]")
    err_console.print(
        f"knowledge base [bold]{escape(course.knowledge_base)}[/] (tenant {escape(tenant)}) for course "
        f"{escape(course.id)}: {len(report.added)} added, {len(report.replaced)} replaced, "
        f"{len(report.unchanged)} unchanged, {report.chunks} chunks"
    )
