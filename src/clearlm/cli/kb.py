"""``clearlm kb``: knowledge bases. Create, add files, list, remove, search, and ask (cited answers)."""

from __future__ import annotations

import logging
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clearlm.cli.common import console, err_console, load
from clearlm.cli.generate import BACKEND, MODEL, _audit_log, _policy
from clearlm.cli.govern import POLICY
from clearlm.errors import InvalidInputError
from clearlm.models import Message, SamplingParams
from clearlm.paths import write_text_atomic

app = typer.Typer(
    help="Knowledge bases: documents to search and to answer from, with citations.", no_args_is_help=True
)

KB_DB = typer.Option(
    None,
    "--db",
    help="PostgreSQL URL (pgvector) holding the knowledge bases; default: the embedded index under "
    "$CLEARLM_HOME/knowledge",
)
NAME = typer.Argument(..., help="the knowledge base's name")


def _open(name: str, db: str | None):
    from clearlm.knowledge import KnowledgeBase

    return KnowledgeBase.open(name, url=db)


def _shown(path: str) -> str:
    """A source's path as shown: relative to the working directory when it lies under it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


@app.command()
def create(
    name: str = NAME,
    chunk_tokens: int = typer.Option(
        200, "--chunk-tokens", help="chunk size in the embedding model's tokens"
    ),
    overlap: int = typer.Option(40, "--overlap", help="tokens shared by consecutive chunks"),
    db: str = KB_DB,
) -> None:
    """Create an empty knowledge base."""
    from clearlm.knowledge import KnowledgeBase

    with KnowledgeBase.create(name, url=db, chunk_tokens=chunk_tokens, overlap=overlap) as kb:
        console.print(f"created knowledge base [bold]{escape(name)}[/] in {escape(kb.location)}")


@app.command()
def add(
    name: str = NAME,
    paths: list[Path] = typer.Argument(..., help="files and folders (.txt .md .html .pdf)"),
    db: str = KB_DB,
) -> None:
    """Add files and folders: chunk, embed, index. Unchanged files are skipped; changed ones replaced."""
    # the report's warnings are printed below; without this, logging's last-resort handler would print
    # each skipped file a second time
    logging.getLogger("clearlm.knowledge").addHandler(logging.NullHandler())
    with _open(name, db) as kb:
        with err_console.status("loading the embedding model ..."):
            kb.embedder  # noqa: B018 (loads it, so the bar below measures the work itself)
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[file]}"),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("adding", total=None, file="")

            def progress(done: int, total: int, path: str) -> None:
                bar.update(task, completed=done, total=total, file=escape(Path(path).name))

            report = kb.add(paths, progress=progress)
        for message in report.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(message)}")
        console.print(
            f"{len(report.added)} added, {len(report.replaced)} replaced, {len(report.unchanged)} unchanged, "
            f"{len(report.skipped)} skipped: {report.chunks} chunks in {report.seconds:.1f} s"
        )


@app.command("list")
def list_(db: str = KB_DB) -> None:
    """List the knowledge bases."""
    from clearlm.knowledge import list_knowledge_bases

    bases = list_knowledge_bases(db)
    if not bases:
        console.print("no knowledge bases yet: create one with `clearlm kb create NAME`")
        return
    table = Table("name", "sources", "chunks", "chunk tokens", "overlap", "location")
    for b in bases:
        table.add_row(
            escape(b.name),
            str(b.sources),
            str(b.chunks),
            str(b.chunk_tokens),
            str(b.overlap),
            escape(b.location),
        )
    console.print(table)


@app.command()
def sources(name: str = NAME, db: str = KB_DB) -> None:
    """List a knowledge base's sources."""
    with _open(name, db) as kb:
        table = Table("path", "kind", "title", "chunks", "added")
        for s in kb.sources():
            table.add_row(escape(_shown(s.path)), s.kind, escape(s.title), str(s.chunks), s.added_at[:19])
        console.print(table)


@app.command()
def remove(
    name: str = NAME, path: Path = typer.Argument(..., help="a source file, or a folder"), db: str = KB_DB
) -> None:
    """Remove a source (or every source under a folder) and its chunks."""
    with _open(name, db) as kb:
        removed = kb.remove(path)
    console.print(f"removed {len(removed)} source(s) from {escape(name)}")


@app.command()
def search(
    name: str = NAME,
    query: str = typer.Argument(..., help="what to look for"),
    k: int = typer.Option(5, "--k", "-k", help="how many passages"),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, vector or bm25"),
    mmr: float = typer.Option(None, "--mmr", help="diversify by maximal marginal relevance (lambda, 0-1)"),
    path_prefix: str = typer.Option(None, "--path-prefix", help="only sources under this path"),
    source: str = typer.Option(None, "--source", help="only this source file"),
    db: str = KB_DB,
) -> None:
    """Search a knowledge base: a table of rank, score, path, heading and snippet."""
    loading = err_console.status("loading the embedding model ...") if mode != "bm25" else nullcontext()
    with _open(name, db) as kb, loading:
        result = kb.search(query, k=k, mode=mode, mmr=mmr, path_prefix=path_prefix, source=source)
    for message in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(message)}")
    if not result.passages:
        console.print("no passages match")
        return
    table = Table(title=f"{escape(name)}: {mode}")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("path", overflow="fold")
    table.add_column("heading", overflow="fold")
    table.add_column("snippet")
    for i, p in enumerate(result.passages, start=1):
        table.add_row(
            str(i), f"{p.score:.4g}", escape(_shown(p.path)), escape(p.heading), escape(_snippet(p.text))
        )
    console.print(table)


@app.command()
def ask(
    name: str = NAME,
    question: str = typer.Argument(..., help="the question"),
    k: int = typer.Option(5, "--k", "-k", help="how many passages to answer from"),
    mode: str = typer.Option("hybrid", "--mode", help="retrieval: hybrid, vector or bm25"),
    answer: str = typer.Option(
        "extract",
        "--answer",
        help="extract (the passages' sentences closest to the question, quoted and cited, or 'The "
        "documents do not say.') or generate (the model writes the answer)",
    ),
    model: str = MODEL,
    backend: str = BACKEND,
    max_new_tokens: int = typer.Option(160, "--max-new-tokens", "-n", help="the most tokens to generate"),
    attribute: bool = typer.Option(
        True, "--attribute/--no-attribute", help="measure how much the answer relied on each passage"
    ),
    ablations: int = typer.Option(16, "--ablations", help="context attribution's ablated prompts"),
    gradient: bool = typer.Option(
        False, "--gradient/--no-gradient", help="also attribute by input x gradient per passage (slower)"
    ),
    html: Path = typer.Option(None, "--html", help="write the answer, citations and passages as HTML"),
    json_out: Path = typer.Option(None, "--json", help="write the cited answer as JSON"),
    db: str = KB_DB,
    audit_db: str = typer.Option(
        None, "--audit-db", help="audit database URL (default: SQLite under $CLEARLM_HOME)"
    ),
    policy: Path = POLICY,
) -> None:
    """Answer a question from a knowledge base, citing its passages by number, and show which passages the
    answer relied on (context attribution by ablation, ContextCite, and by gradients). By default the
    answer quotes the passages' sentences closest to the question (``--answer extract``: on the project's
    questions it states the key fact more often than the default model writing it; see the README)."""
    from clearlm.knowledge.answer_html import render_html
    from clearlm.pipeline import Retrieval, TurnRequest, cite_turn, start_turn
    from clearlm.pipeline.grounding import ANSWERS
    from clearlm.store import AuditRecord

    if answer not in ANSWERS:  # before the model loads
        raise InvalidInputError(f"--answer is one of {', '.join(ANSWERS)}, not {answer!r}")
    for path in (html, json_out):
        if path is not None and not path.parent.is_dir():
            raise InvalidInputError(f"cannot write {path}: the folder {path.parent} does not exist")
    audit, gov = _audit_log(audit_db), _policy(policy)
    with _open(name, db) as kb:
        engine = load(model, backend)
        record = AuditRecord(
            request_id=f"cli-{uuid.uuid4().hex[:24]}", created_at=datetime.now(UTC), endpoint="cli:kb ask"
        )
        request = TurnRequest(
            [Message("user", question)],
            SamplingParams(max_new_tokens=max_new_tokens),
            retrieval=Retrieval(kb, k, mode, answer),
        )
        with err_console.status("retrieving passages ..."):
            turn = start_turn(engine, request, record, audit, gov)
        try:
            for _, chunk in turn:
                console.print(chunk.text, end="", markup=False, soft_wrap=True)
        finally:
            turn.close(130, "interrupted")
        console.print()
    if turn.grounding is None:  # the input policy refused the question: nothing was retrieved to cite
        err_console.print("[yellow](answered by the policy's refusal)[/]")
        return
    for message in turn.grounding.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(message)}")
    explainer = None
    if attribute:  # attribution needs gradients or forward passes on torch, beside a faster engine
        explainer = engine if engine.kind == "torch" else load(model, "torch")
    with err_console.status("attributing the answer to its passages ...") if attribute else nullcontext():
        cited = cite_turn(explainer, turn, ablations=ablations, gradient=gradient)
    console.print(_support_table(cited))
    if cited.unknown_citations:
        numbers = ", ".join(f"[{n}]" for n in cited.unknown_citations)
        err_console.print(f"[yellow]warning:[/] the answer cites {escape(numbers)}, which no passage has")
    if json_out is not None:
        cited.save(json_out)
    if html is not None:
        write_text_atomic(html, render_html(cited))
        err_console.print(f"wrote {escape(str(html))}")


def _support_table(cited) -> Table:
    table = Table(title="passages")
    for column, justify in (("n", "right"), ("source", "left"), ("heading", "left"), ("cited", "center")):
        table.add_column(column, justify=justify, overflow="fold")
    table.add_column("relied on (ablation)", justify="right")
    gradient = any(s.gradient_share == s.gradient_share for s in cited.support)  # not NaN: computed
    if gradient:
        table.add_column("gradient share", justify="right")
    table.add_column("flag")
    for p, s in zip(cited.passages, cited.support, strict=True):
        cells = [
            str(s.number),
            escape(f"{_shown(p.path)}:{p.start}-{p.end}"),
            escape(p.heading),
            "yes" if s.cited else "",
            "-" if s.relied is None else f"{s.weight:+.2f}",
        ]
        if gradient:
            cells.append(f"{100 * s.gradient_share:.0f}%")
        table.add_row(*cells, escape((s.flag or "").replace("_", " ")))
    return table
