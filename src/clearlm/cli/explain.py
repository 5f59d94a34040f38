"""``clearlm explain``: attribute every generated (or forced) token to the prompt, and show it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from clearlm.cli.adapter_compare import print_comparison
from clearlm.cli.common import DB, console, err_console, load, read_prompt
from clearlm.cli.generate import _audit_log, _policy, start
from clearlm.cli.govern import POLICY
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.explain import DEFAULT_METHOD, METHODS, aggregate_words
from clearlm.explain.render import render_png, render_terminal, write_html
from clearlm.govern import disclosure
from clearlm.models import DEFAULT_MODEL, Message, SamplingParams
from clearlm.pipeline import TurnRequest, check_method, explain_turn
from clearlm.tune.compare import check_reference
from clearlm.tune.compare_turn import compare_turn


def faithfulness_table(backend, result) -> Table:
    """The result's faithfulness next to a random attribution's (the floor), averaged over target tokens."""
    from clearlm.explain.metrics import evaluate, random_attribution

    with backend.lock:  # a view of a LoRA adapter: its adapter active
        ours = evaluate(backend, result).summary()
        floor = evaluate(backend, random_attribution(result)).summary()
    table = Table(title="Faithfulness (mean over generated tokens)", title_justify="left")
    for col in ("metric", "better", result.method, "random"):
        table.add_column(col, justify="right" if col in (result.method, "random") else "left")
    better = {"comprehensiveness": "higher", "sufficiency": "lower", "soft_nc": "higher", "soft_ns": "higher"}
    for name, direction in better.items():
        table.add_row(name, direction, f"{ours[name]:.3f}", f"{floor[name]:.3f}")
    return table


def explain(
    prompt: str = typer.Argument(
        None, help="the text the model continues (use --chat to send it as a message)"
    ),
    file: Path = typer.Option(None, "--file", "-f", help="read the prompt from a UTF-8 text file"),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help=f"catalog name, local folder, .gguf or hub id (default: {DEFAULT_MODEL}, or --adapter's base)",
    ),
    adapter: str = typer.Option(
        None, "--adapter", "-a", help="explain base + this LoRA adapter (clearlm adapters list)"
    ),
    compare: bool = typer.Option(
        False,
        "--compare",
        help="with --adapter: attribute the same answer under the base too, and show what moved",
    ),
    against: str = typer.Option(
        None, "--against", help="with --compare: compare with this other adapter instead of the base"
    ),
    method: str = typer.Option(DEFAULT_METHOD, "--method", help=f"one of: {', '.join(METHODS)}"),
    target: str = typer.Option(None, "--target", "-t", help="force this continuation instead of generating"),
    max_new_tokens: int = typer.Option(8, "--max-new-tokens", "-n", help="tokens to generate when no target"),
    chat: bool = typer.Option(
        False, "--chat", help="send the prompt as a user message via the chat template"
    ),
    system: str = typer.Option(None, "--system", "-s", help="a system message (implies --chat)"),
    steps: int = typer.Option(
        None, "--steps", help="integrated gradients: most gradient evaluations (adaptive) or fixed nodes"
    ),
    baseline: str = typer.Option(None, "--baseline", help="integrated gradients: zero, pad or mean"),
    placement: str = typer.Option(
        None, "--placement", help="integrated gradients: adaptive (default), gauss-legendre or riemann"
    ),
    tolerance: float = typer.Option(
        None, "--tolerance", help="integrated gradients, adaptive: the completeness gap to reach (0.01 = 1%)"
    ),
    contrast: str = typer.Option(None, "--contrast", help="contrastive: the alternative token(s)"),
    sequence: bool = typer.Option(
        False,
        "--sequence",
        help="attribute the whole target's log-probability in one row (gradient methods, occlusion)",
    ),
    unit: str = typer.Option(None, "--unit", help="occlusion: leave out one token or one word"),
    layer: int = typer.Option(None, "--layer", help="attention: one layer (default: average of all)"),
    head: int = typer.Option(None, "--head", help="attention: one head (default: average of all)"),
    level: str = typer.Option("word", "--level", help="show words (sub-word scores summed) or tokens"),
    show_template: bool = typer.Option(False, "--show-template", help="also show chat-template tokens"),
    top_k: int = typer.Option(5, "--top-k", help="sources listed per generated token"),
    html: Path = typer.Option(None, "--html", help="write an interactive HTML view here"),
    png: Path = typer.Option(None, "--png", help="write a PNG heatmap here"),
    json_out: Path = typer.Option(None, "--json", help="write the token-level result as JSON here"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float64"),
    evaluate: bool = typer.Option(
        False,
        "--evaluate",
        help="measure faithfulness (comprehensiveness, sufficiency, Soft-NC/NS) vs random",
    ),
    db: str = DB,
    policy: Path = POLICY,
) -> None:
    """Explain what in the prompt made the model say what it said, token by token.

    The generation (or the forced --target) goes through the pipeline like `generate`: checked by
    --policy (whose output rules also redact the explanation's token strings) and written to the audit
    log (--db) with its explanation's method.

    With --adapter NAME, the model is the base with that LoRA adapter (the base defaults to the one the
    adapter was trained on). With --compare, the answer (generated once by the tuned model, or --target)
    is attributed under the base (adapter disabled) and under the tuned model, and the difference shown
    per generated token, with the prompt tokens whose attribution moved most (--json writes it all);
    --against OTHER compares with the base + adapter OTHER instead."""
    text = read_prompt(prompt, file)
    if compare and adapter is None:
        raise InvalidInputError("--compare compares a LoRA adapter with its base: give --adapter NAME")
    if against is not None and not compare:
        raise InvalidInputError("--against names the adapter to compare with: give --compare too")
    if compare:
        check_reference(adapter, against)
    if compare and (html or png or evaluate):
        raise InvalidInputError("--compare writes --json only: leave out --html, --png and --evaluate")
    if level not in ("word", "token"):
        raise InvalidInputError(f"--level must be 'word' or 'token', got {level!r}")
    options = {
        k: v
        for k, v in dict(
            steps=steps,
            baseline=baseline,
            placement=placement,
            tolerance=tolerance,
            contrast=contrast,
            sequence=sequence or None,
            unit=unit,
            layer=layer,
            head=head,
        ).items()
        if v is not None
    }
    the_prompt = (
        ([Message("system", system)] if system else []) + [Message("user", text)] if chat or system else text
    )
    outputs = [p for p in (json_out, html, png) if p is not None]
    for path in outputs:
        if not path.parent.is_dir():
            raise InvalidInputError(f"cannot write {path}: the folder {path.parent} does not exist")
    check_method(method, options)
    audit = _audit_log(db)
    gov = _policy(policy)
    b = base = load(model or _adapter_base(adapter) or DEFAULT_MODEL, "torch", dtype)
    if adapter is not None:  # the base with the adapter (clearlm.tune.serve)
        from clearlm.tune.serve import AdapterSet

        adapters = AdapterSet(base)
        b, base = adapters.load(adapter), adapters.view(against)
    if target is None:
        request = TurnRequest(the_prompt, SamplingParams(max_new_tokens=max_new_tokens))
    else:
        request = TurnRequest(the_prompt, SamplingParams(max_new_tokens=1), target=target)
    # One pipeline turn (checked by the policy and audited, as `generate` is), then its explanation; the
    # turn's record is written once the explanation is done, with how it ended.
    turn = start(b, request, "cli:explain", audit, gov, deferred=True)

    def work():
        with err_console.status("generating ..." if target is None else "checking ..."):
            turn.run()
        with err_console.status(f"explaining with {method} ..."):
            if compare:
                return compare_turn(base, b, adapter, turn, method, options, level, top_k, against)
            return explain_turn(b, turn, method, options)

    try:
        result = turn.settle(work)
    finally:
        turn.close(130, "interrupted")  # nothing to do when the turn ended by itself
    if result is None:
        console.print(turn.choices[0].text, markup=False)
        err_console.print("[yellow](answered by the policy's refusal: nothing to explain)[/]")
        return
    if compare:
        print_comparison(result, console)
        if json_out is not None:
            _write(json_out, result.save, result.tuned)
        return
    shown = aggregate_words(result) if level == "word" and result.granularity == "token" else result
    render_terminal(shown, console, top_k=top_k, show_template=show_template)
    if evaluate:
        with err_console.status("measuring faithfulness ..."):
            console.print(faithfulness_table(b, result))
    # Files are written only now, each atomically, so a failure above leaves none half-written.
    for path, write in (
        (json_out, lambda p: result.save(p)),
        (html, lambda p: write_html(shown, p, show_template=show_template)),
        (png, lambda p: render_png(shown, p, show_template=show_template)),
    ):
        if path is not None:
            _write(path, write, result)


def _write(path: Path, write, result) -> None:
    """``write(path)`` and its disclosure sidecar; ClearlmError when the file cannot be written."""
    try:
        write(path)
        disclosure.write_sidecar(path, result.model, content="explanation", method=result.method)
    except OSError as exc:
        raise ClearlmError(f"cannot write {path}: {exc.strerror or exc}") from None
    err_console.print(f"[green]wrote[/] {escape(str(path))}")


def _adapter_base(adapter: str | None) -> str | None:
    """The base model adapter ``adapter`` was trained on (AdapterNotFoundError when there is no such adapter)."""
    if adapter is None:
        return None
    from clearlm.tune import read_card

    return read_card(adapter)["base"]["name"]
