"""Helpers shared by the CLI commands: consoles, reading prompts, loading a model with a spinner."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from clearlm.errors import InvalidInputError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
DB = typer.Option(
    None, "--db", help="database URL (default: a SQLite file under $CLEARLM_HOME; or postgresql://...)"
)


def read_prompt(prompt: str | None, file: Path | None) -> str:
    """The prompt from the argument or from a UTF-8 text file (exactly one of them).

    Raises:
        InvalidInputError: neither or both given, unreadable file, or a file that is not UTF-8 text.
    """
    if (prompt is None) == (file is None):
        raise InvalidInputError("give the prompt either as an argument or with --file PATH (exactly one)")
    if file is None:
        return prompt  # type: ignore[return-value]
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {file}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{file} is not UTF-8 text (invalid byte at offset {exc.start}): "
            f"convert it first, e.g. `iconv -f latin1 -t utf-8 {file}`"
        ) from None


def load(
    model: str,
    backend: str = "auto",
    dtype: str = "float32",
    slots: int = 1,
    threads: int | None = None,
    engine_url: str | None = None,
    **options,
):
    """Load a model, showing a spinner (and progress if a catalog model must be assembled first); ``options``
    go to ``load_backend`` (``replicas``, ``ray_address``)."""
    from transformers.utils import logging as hf_logging

    from clearlm.models import load_backend, resolve_backend

    hf_logging.disable_progress_bar()  # the spinner below says what is happening
    backend = resolve_backend(model, backend)
    with err_console.status(f"loading {escape(model)} ({backend}) ..."):
        return load_backend(
            model, backend, dtype=dtype, slots=slots, threads=threads, engine_url=engine_url, **options
        )


def progress_bar():
    """A rich progress bar on stderr for a batch: description, bar, done/total, elapsed, remaining."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    return Progress(
        *columns, TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False
    )
