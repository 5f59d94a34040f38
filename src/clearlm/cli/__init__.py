"""The ``clearlm`` command line: one typer group per part, thin shells over the public functions."""

from __future__ import annotations

import os
import sys

# The command shows its own rich progress; libraries' tqdm bars (the GGUF dequantizer's) would interleave.
# tqdm reads this when it is first imported, so it is set before anything imports it.
os.environ.setdefault("TQDM_DISABLE", "1")

import typer
from rich.markup import escape

from clearlm.cli import adapter_evaluate
from clearlm.cli import audit as audit_cmd
from clearlm.cli import batch as batch_cmd
from clearlm.cli import classroom as classroom_cmd
from clearlm.cli import classroom_quiz as classroom_quiz_cmd
from clearlm.cli import engines as engines_cmd
from clearlm.cli import explain as explain_cmd
from clearlm.cli import generate as generate_cmd
from clearlm.cli import govern as govern_cmd
from clearlm.cli import kb as kb_cmd
from clearlm.cli import keys as keys_cmd
from clearlm.cli import models as models_cmd
from clearlm.cli import probe as probe_cmd
from clearlm.cli import serve as serve_cmd
from clearlm.cli import speech as speech_cmd
from clearlm.cli import studio as studio_cmd
from clearlm.cli import translate as translate_cmd
from clearlm.cli import tune as tune_cmd
from clearlm.cli import vision as vision_cmd
from clearlm.cli.common import err_console
from clearlm.errors import ClearlmError

app = typer.Typer(
    name="clearlm",
    help="Local language models that show their work: generate, chat, and explain every generated token.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_cmd.app, name="models")
app.add_typer(engines_cmd.app, name="engines")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(kb_cmd.app, name="kb")
app.command("serve")(serve_cmd.serve)
app.add_typer(govern_cmd.policy_app, name="policy")
app.add_typer(audit_cmd.app, name="audit")
app.command("scan")(govern_cmd.scan)
app.command("card")(govern_cmd.card)
app.add_typer(probe_cmd.app, name="probe")
app.command("generate")(generate_cmd.generate)
app.command("chat")(generate_cmd.chat)
app.command("explain")(explain_cmd.explain)
app.command("translate")(translate_cmd.translate)
app.command("transcribe")(speech_cmd.transcribe)
app.command("speak")(speech_cmd.speak)
app.command("describe")(vision_cmd.describe)
app.command("video")(vision_cmd.video)
app.add_typer(batch_cmd.app, name="batch")
app.add_typer(classroom_cmd.app, name="classroom")
app.add_typer(studio_cmd.app, name="studio")
app.command("tune")(tune_cmd.tune)
tune_cmd.app.command("evaluate")(adapter_evaluate.evaluate)
app.add_typer(tune_cmd.app, name="adapters")
classroom_cmd.app.add_typer(classroom_quiz_cmd.app, name="quiz")


def main() -> None:
    """Entry point: a user's mistake prints one clear message and exits 1, never a traceback."""
    try:
        app()
    except ClearlmError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[dim]interrupted[/]")
        sys.exit(130)
