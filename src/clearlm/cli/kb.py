"""``clearlm kb``: knowledge bases. Create, add files, list, remove, search."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clearlm.cli.common import console, err_console

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
