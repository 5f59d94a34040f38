"""``clearlm generate`` and ``clearlm chat``: streaming generation in the terminal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer

from clearlm.cli.common import DB, console, err_console, load, read_prompt
from clearlm.cli.govern import POLICY
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.govern import disclosure
from clearlm.models import DEFAULT_MODEL, Message, SamplingParams
from clearlm.models.chat import has_chat_template
from clearlm.paths import write_text_atomic

MODEL = typer.Option(DEFAULT_MODEL, "--model", "-m", help="catalog name, local folder, .gguf file or hub id")
BACKEND = typer.Option(
    "auto",
    "--backend",
    "-b",
    help="auto (llamacpp where installed and the model has a GGUF, else torch), torch (transformers), llamacpp, or vllm (its own environment: clearlm engines install vllm)",
)
MAX_NEW = typer.Option(256, "--max-new-tokens", "-n", help="the most tokens to generate")
TEMPERATURE = typer.Option(0.0, "--temperature", help="0 = greedy decoding")
TOP_P = typer.Option(1.0, "--top-p", help="nucleus sampling mass, in (0, 1]")
TOP_K = typer.Option(0, "--top-k", help="sample from the k likeliest tokens (0 = off)")
SEED = typer.Option(None, "--seed", help="random seed for sampling")
STOP = typer.Option(None, "--stop", help="a string that ends generation (repeatable)")
SYSTEM = typer.Option(None, "--system", "-s", help="system message (chat models)")


def _audit_log(db: str | None):
    from clearlm.store import AuditLog, Database

    return AuditLog(Database(db))


def _policy(path: Path | None):
    if path is None:
        return None
    from clearlm.govern import load_policy

    policy = load_policy(path)
    with err_console.status("loading the policy's scanners ..."):
        policy.build_all()
    return policy


def start(backend, request, endpoint: str, audit, policy=None, deferred: bool = False):
    """A pipeline turn for a command (``endpoint`` e.g. "cli:generate"), with its audit record."""
    from clearlm.pipeline import start_turn
    from clearlm.store import AuditRecord

    record = AuditRecord(
        request_id=f"cli-{uuid.uuid4().hex[:24]}", created_at=datetime.now(UTC), endpoint=endpoint
    )
    return start_turn(backend, request, record, audit, policy, deferred)


def _stream(backend, prompt, params: SamplingParams, audit, endpoint: str, policy=None) -> str:
    """Print a generation as it streams, through the pipeline (so it is checked and audited); return
    its text."""
    from clearlm.pipeline import TurnRequest

    turn = start(backend, TurnRequest(prompt, params), endpoint, audit, policy)
    try:
        for _, chunk in turn:
            console.print(chunk.text, end="", markup=False, soft_wrap=True)
            console.file.flush()
    finally:
        turn.close(130, "interrupted")  # nothing to do when the turn ended by itself
    console.print()
    if turn.choices[0].finish_reason == "length":
        err_console.print("[dim](stopped at --max-new-tokens)[/]")
    if turn.choices[0].finish_reason == "content_filter":
        err_console.print("[yellow](answered by the policy's refusal)[/]")
    return turn.choices[0].text


def generate(
    prompt: str = typer.Argument(None, help="the prompt text"),
    file: Path = typer.Option(None, "--file", "-f", help="read the prompt from a UTF-8 text file"),
    model: str = MODEL,
    backend: str = BACKEND,
    system: str = SYSTEM,
    raw: bool = typer.Option(False, "--raw", help="send the text as is, without the chat template"),
    max_new_tokens: int = MAX_NEW,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    top_k: int = TOP_K,
    seed: int = SEED,
    stop: list[str] = STOP,
    db: str = DB,
    policy: Path = POLICY,
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="also write the text to this file, with an AI-disclosure sidecar FILE.ai.json",
    ),
) -> None:
    """Generate a reply and stream it to the terminal.

    A chat model gets the prompt as a user message through its chat template (unless --raw); a base model
    continues the text.
    """
    text = read_prompt(prompt, file)
    params = SamplingParams(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        seed=seed,
        stop=tuple(stop or ()),
    )
    if output is not None and not output.parent.is_dir():
        raise InvalidInputError(f"cannot write {output}: the folder {output.parent} does not exist")
    audit = _audit_log(db)
    gov = _policy(policy)
    b = load(model, backend)
    if raw or not has_chat_template(b.tokenizer):
        messages = text
    else:
        messages = ([Message("system", system)] if system else []) + [Message("user", text)]
    reply = _stream(b, messages, params, audit, "cli:generate", gov)
    if output is not None:
        write_text_atomic(output, reply)
        disclosure.write_sidecar(output, b.name, policy=gov.name if gov else None)


def chat(
    model: str = MODEL,
    backend: str = BACKEND,
    system: str = SYSTEM,
    max_new_tokens: int = MAX_NEW,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    top_k: int = TOP_K,
    seed: int = SEED,
    db: str = DB,
    policy: Path = POLICY,
) -> None:
    """An interactive chat with history. Type /reset to start over, /exit (or Ctrl-D) to leave."""
    params = SamplingParams(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed
    )
    audit = _audit_log(db)
    gov = _policy(policy)
    b = load(model, backend)
    if not has_chat_template(b.tokenizer):
        err_console.print(f"[yellow]{model} has no chat template: turns are joined as plain text[/]")
    history: list[Message] = [Message("system", system)] if system else []
    err_console.print("[dim]chatting with[/] " + model + "[dim]; /reset to start over, /exit to leave[/]")
    while True:
        try:
            line = console.input("[bold cyan]you>[/] ")
        except EOFError:
            console.print()
            return
        if line.strip() in ("/exit", "/quit"):
            return
        if line.strip() == "/reset":
            history = history[:1] if system else []
            err_console.print("[dim]history cleared[/]")
            continue
        if not line.strip():
            continue
        history.append(Message("user", line))
        console.print("[bold green]assistant>[/] ", end="")
        try:
            reply = _stream(b, history, params, audit, "cli:chat", gov)
        except ClearlmError as exc:  # e.g. the history outgrew the context: keep chatting
            history.pop()
            err_console.print(f"\n[bold red]error:[/] {exc}")
            continue
        history.append(Message("assistant", reply))
