"""``clearlm batch``: jobs over many items, in this process or spread over a Ray cluster."""

from __future__ import annotations

from pathlib import Path

import typer

from clearlm.cli.common import err_console, progress_bar
from clearlm.errors import InvalidInputError
from clearlm.explain import DEFAULT_METHOD, METHODS
from clearlm.models import DEFAULT_MODEL

app = typer.Typer(
    help="Batch jobs: many items at once, in this process or spread over a Ray cluster (--ray-address).",
    no_args_is_help=True,
)


@app.command("explain")
def explain(
    file: Path = typer.Argument(
        ...,
        help='JSONL, one item a line: {"prompt": ..., "target"?, "method"?, "max_new_tokens"?, "options"?}',
    ),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL of the results, in input order"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="catalog name, local folder or .gguf"),
    method: str = typer.Option(
        DEFAULT_METHOD, "--method", help=f"for items that name none: one of {', '.join(METHODS)}"
    ),
    ray_address: str = typer.Option(
        None, "--ray-address", help="spread the items over this Ray cluster (HEAD:6379, or auto)"
    ),
    workers: int = typer.Option(
        None, "--workers", help="Ray actors (default: one per --threads CPUs of the cluster; 0: this process)"
    ),
    threads: int = typer.Option(1, "--threads", help="CPU threads per Ray actor"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float64"),
) -> None:
    """Explain every prompt of FILE with the torch backend and write one JSON line per item (the
    attribution's JSON, or the item's error) to --out. Results equal `clearlm explain`'s, one by one."""
    from clearlm.explain.batch import explain_batch, read_items, write_results

    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if not out.parent.is_dir():
        raise InvalidInputError(f"cannot write {out}: the folder {out.parent} does not exist")
    if threads < 1 or (workers is not None and workers < 0):
        raise InvalidInputError("--threads must be >= 1 and --workers >= 0")
    items = read_items(file, method)
    with progress_bar() as bar:
        task = bar.add_task("explaining", total=len(items))
        outcomes = explain_batch(
            model,
            items,
            address=ray_address,
            workers=workers,
            threads=threads,
            dtype=dtype,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    write_results(out, outcomes)
    errors = sum(1 for o in outcomes if isinstance(o, Exception))
    err_console.print(f"{len(outcomes) - errors} explained, {errors} failed [dim]->[/] {out}")
