"""``clearlm translate``: text, a file (Markdown, HTML, SRT, VTT keep their structure) or a stream from
stdin translated a sentence at a time (``clearlm.translate``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.markup import escape

from clearlm.cli.common import DB, console, err_console, load, progress_bar, read_prompt
from clearlm.cli.govern import POLICY
from clearlm.errors import InvalidInputError

ENGINE = typer.Option(
    "auto",
    "--engine",
    "-e",
    help="auto (the engine measured best for the pair and model), apertium, bergamot, llm or hybrid (these two need --model)",
)


def _stdin_pieces():
    """stdin as it arrives (whatever the terminal or pipe has ready), decoded as UTF-8."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = sys.stdin.fileno()
    while chunk := os.read(fd, 4096):
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _llm(model, backend, db, policy, glossary):
    from clearlm.cli.generate import _audit_log, _policy
    from clearlm.translate import LLMEngine

    return LLMEngine(load(model, backend), policy=_policy(policy), audit=_audit_log(db), glossary=glossary)


def translate(
    text: str = typer.Argument(None, help="the text to translate (or --file, or --stream)"),
    source: str = typer.Option("en", "--from", "-f", help="the text's language (ISO 639-1)"),
    target: str = typer.Option(None, "--to", "-t", help="the language to translate into (ISO 639-1)"),
    engine: str = ENGINE,
    file: Path = typer.Option(None, "--file", help="translate this file (.md, .html, .srt, .vtt, or text)"),
    format: str = typer.Option(None, "--format", help="the file's format: text, markdown, html, srt, vtt"),
    output: Path = typer.Option(None, "--output", "-o", help="write the translation here (else printed)"),
    glossary: Path = typer.Option(None, "--glossary", "-g", help="YAML or CSV: source term -> target term"),
    stream: bool = typer.Option(
        False, "--stream", help="read stdin as it arrives; print each sentence when done"
    ),
    quality: bool = typer.Option(False, "--quality", help="back-translation similarity per sentence"),
    model: str = typer.Option(None, "--model", "-m", help="the chat model for llm, hybrid and auto"),
    backend: str = typer.Option("auto", "--backend", "-b", help="the model's backend"),
    list_engines: bool = typer.Option(False, "--list", help="list the engines and their pairs, then exit"),
    db: str = DB,
    policy: Path = POLICY,
) -> None:
    """Translate text, a document or a stream. Each model call is an audited pipeline turn."""
    from clearlm.models import DEFAULT_MODEL
    from clearlm.translate import (
        NEEDS_MODEL,
        LLMEngine,
        QualityCheck,
        check_pair,
        format_of,
        load_glossary,
        make_engine,
        translate_stream,
        translate_text,
    )

    if list_engines:
        return _print_engines(model is not None)
    if target is None:
        raise InvalidInputError("give the language to translate into: --to es (ISO 639-1)")
    terms = load_glossary(glossary) if glossary is not None else None
    if engine in NEEDS_MODEL and model is None:
        model = DEFAULT_MODEL
    # a bad engine or pair fails before a model is loaded
    check_pair(make_engine(engine, LLMEngine(None) if model is not None else None), source, target)
    llm = _llm(model, backend, db, policy, terms) if model is not None else None
    chosen = make_engine(engine, llm)
    pair = check_pair(chosen, source, target)
    if stream:
        if text is not None or file is not None:
            raise InvalidInputError("--stream reads stdin: give no text and no --file")
        for done in translate_stream(chosen, _stdin_pieces(), pair.source, pair.target, terms):
            console.print(done.text, markup=False, soft_wrap=True)
            console.file.flush()
            missing = ", ".join(m.source for m in done.missing_terms)
            err_console.print(
                f"[dim]sentence {done.index + 1}: {done.latency:.2f} s[/]"
                + (f" [yellow]glossary terms not kept: {escape(missing)}[/]" if missing else "")
            )
        return
    body = read_prompt(text, file)
    kind = format_of(file, format) if file is not None else (format or "text")
    if file is not None:  # block by block, each written out as it is done (memory: a block)
        from clearlm.translate.blocks import translate_blocks

        with progress_bar() as bar:
            task = bar.add_task(f"translating {escape(file.name)}", total=None)
            blocks = translate_blocks(
                chosen, body, pair.source, pair.target, kind, terms,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )  # fmt: skip
            count, flagged = _write_blocks(blocks, output)
        for i, s in flagged:
            terms_text = ", ".join(f"{m.source} -> {m.target}" for m in s.missing_terms)
            err_console.print(f"[yellow]sentence {i}: glossary terms not kept: {escape(terms_text)}[/]")
        if output is not None:
            err_console.print(f"wrote {escape(str(output))} ({count} sentences)")
        return
    else:
        check = None
        if quality:
            from clearlm.models.embeddings import load_embedder

            check = QualityCheck(make_engine(engine, llm), load_embedder())
        done = translate_text(chosen, body, pair.source, pair.target, terms, check)
        sentences, result = done.sentences, done.text
    if output is not None:
        from clearlm.paths import write_text_atomic

        write_text_atomic(output, result if result.endswith("\n") else result + "\n")
        err_console.print(f"wrote {escape(str(output))} ({len(sentences)} sentences)")
    else:
        console.print(result, markup=False, soft_wrap=True)
    for i, s in enumerate(sentences, 1):
        if s.missing_terms:
            terms_text = ", ".join(f"{m.source} -> {m.target}" for m in s.missing_terms)
            err_console.print(f"[yellow]sentence {i}: glossary terms not kept: {escape(terms_text)}[/]")
        if s.quality is not None:
            mark = "[yellow]check[/]" if s.quality.flagged else "ok"
            err_console.print(
                f"sentence {i}: similarity {s.quality.similarity:.2f} {mark}  back: {escape(s.quality.back)}"
            )


def _print_engines(with_model: bool) -> None:
    from rich.table import Table

    from clearlm.translate import describe_engines

    table = Table("engine", "available", "pairs")
    for row in describe_engines(with_model):
        pairs = (
            ", ".join(row["pairs"])
            if len(row["pairs"]) < 20
            else f"{len(row['pairs'])} pairs (any two of en, es, pt, fr, de, it, ca, gl)"
        )
        available = (
            "yes" if row["available"] else ("needs --model" if row["needs_model"] else "not installed")
        )
        table.add_row(row["name"], available, pairs)
    console.print(table)


def _write_blocks(blocks, output: Path | None) -> tuple[int, list]:
    """Each translated block written as it comes (to ``output`` through a ``.part`` file renamed at the
    end, else printed); returns (sentences, the (number, sentence) pairs to report)."""
    count, flagged, first = 0, [], True
    out = None if output is None else output.with_name(output.name + ".part").open("w", encoding="utf-8")
    try:
        for block in blocks:
            text = block.text if first else "\n" + block.text
            first = False
            if out is not None:
                out.write(text)
            else:
                console.file.write(text)
            count, flagged = count + block.count, flagged + block.sentences
        if out is not None:
            out.write("" if text.endswith("\n") else "\n")
            out.close()
            os.replace(out.name, output)
        else:
            console.file.write("\n")
            console.file.flush()
    finally:
        if out is not None and not out.closed:
            out.close()
            Path(out.name).unlink(missing_ok=True)
    return count, flagged
