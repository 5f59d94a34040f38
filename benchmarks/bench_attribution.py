"""Step-wise attribution: clearlm against Captum and inseq, same model, prompt, target, in one run.

For each method it times token-level attribution of every target token to all earlier tokens, reports the
median of ``--repeats`` runs, the peak resident memory above the loaded model, the ratio peer / clearlm, and
the normwise relative error ||clearlm - peer|| / ||peer|| over the prompt columns (the peers attribute to
the prompt only), for the same definition of the score. Then sequence-level attribution (the whole target's
log-probability, Captum's ``seq_attr``), against the Captum run that produced it. It installs nothing:
captum is a dev dependency; inseq is optional (``make peers``:
``pip install --no-deps inseq jaxtyping wadler_lindig 'typeguard<=2.13.3' treescope``, since its metadata
pulls CUDA wheels).

    python benchmarks/bench_attribution.py                      # default model, 64-token prompt, 32 targets
    python benchmarks/bench_attribution.py --slow-peers         # also the peers' integrated gradients and
                                                                # inseq's occlusion (15-30 min each)
    python benchmarks/bench_attribution.py --text /usr/share/common-licenses/GPL-3 --prompt-tokens 2000 \
        --target-tokens 64 --methods input_x_gradient --peers none --repeats 1 --no-floor  # long context

Peers and what is compared:
    saliency          Captum LLMGradientAttribution + LayerGradientXActivation(multiply_by_inputs=False):
                      its score is the sum of the gradient's components, ours the L2 norm: timed, not compared.
                      inseq "saliency" (absolute gradients), reduced with the L2 norm: compared.
    input_x_gradient  Captum LLMGradientAttribution + LayerGradientXActivation; inseq "input_x_gradient"
                      summed over the embedding: compared.
    integrated_gradients (32 steps, zero baseline, Gauss-Legendre)
                      Captum IntegratedGradients on the embeddings, one prefix per target step; inseq
                      "integrated_gradients" summed over the embedding: compared.
    occlusion         Captum LLMAttribution + FeatureAblation, baseline token id 0, token by token
                      (forward_in_tokens=True, its default) and sequence-level: compared. inseq "occlusion"
                      (occludes embedding vectors, scores their norms): timed, not compared.
The peers explain log-probabilities here (inseq: attributed_fn="probability", logprob=True), as clearlm does.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import torch

from clearlm.explain import explain
from clearlm.explain.sequence import build_sequence

TEXT = (
    "In 1889 the engineer Gustave Eiffel finished a wrought-iron lattice tower on the Champ de Mars for the "
    "World's Fair in Paris. Critics called it an eyesore and a useless monster, yet within a few decades it had "
    "become the symbol of France and of modern engineering. Today millions of visitors climb its stairs or "
    "ride the lifts to the top, where the view over the river Seine and the whole city stretches for many "
    "kilometres on a clear day, and at night the tower sparkles with thousands of lights every hour."
)


try:
    _LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: peaks may then count memory an earlier run freed
    _LIBC = None


@dataclass
class Row:
    method: str
    tool: str
    seconds: float
    peak_mb: float
    rel_err: float | None = None


class PeakMemory:
    """Peak resident memory (MB) above the level at entry, sampled every 5 ms in a thread.

    On entry, memory the allocator holds but no longer uses goes back to the system (glibc's malloc_trim):
    otherwise whichever tool ran first would pay for the memory later tools reuse without it showing.
    """

    def __enter__(self):
        if _LIBC is not None:
            _LIBC.malloc_trim(0)
        self.proc = psutil.Process(os.getpid())
        self.start = self.peak = self.proc.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.mb = (self.peak - self.start) / 2**20


def timed(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, float, np.ndarray]:
    """(median seconds, peak MB, last result) of ``repeats`` calls."""
    times, peak, out = [], 0.0, None
    for _ in range(repeats):
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        peak = max(peak, mem.mb)
    return statistics.median(times), peak, out


def split_text(tokenizer, n_prompt: int, n_target: int, text: str = TEXT) -> tuple[str, str]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < n_prompt + n_target:
        raise SystemExit(f"the benchmark text has {len(ids)} tokens, fewer than {n_prompt + n_target}")
    return tokenizer.decode(ids[:n_prompt]), tokenizer.decode(ids[n_prompt : n_prompt + n_target])


def rel_err(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


# ---- clearlm ---------------------------------------------------------------------------------------------


def clearlm_fn(
    backend, prompt: str, target: str, method: str, steps: int, sequence: bool = False
) -> Callable[[], np.ndarray]:
    # Captum's FeatureAblation replaces a token with id 0 by default: occlude with the same token.
    baseline = backend.tokenizer.decode([0])
    options = {
        "integrated_gradients": {"steps": steps, "placement": "gauss-legendre"},  # Captum's rule
        "occlusion": {"baseline": baseline},
    }.get(method, {})
    if sequence:
        options["sequence"] = True
    return lambda: explain(backend, prompt, target, method=method, **options).scores


def floor_fn(backend, prompt: str, target: str) -> Callable[[], None]:
    """One shared forward and one input-gradient backward per target token, one at a time: the floor of an
    exact token-level gradient table on a CPU."""
    from clearlm.explain.gradient import step_logprobs

    seq = build_sequence(backend, prompt, target)

    def run():
        x = backend.model.get_input_embeddings()(seq.ids[None]).detach().requires_grad_(True)
        f = step_logprobs(backend.model, x, seq)[0][0]
        for t in range(len(f)):
            torch.autograd.grad(f[t], x, retain_graph=True)

    return run


# ---- Captum ----------------------------------------------------------------------------------------------


def captum_fn(backend, prompt: str, target: str, method: str, steps: int, **kw) -> Callable[[], np.ndarray]:
    from captum.attr import (
        FeatureAblation,
        IntegratedGradients,
        LayerGradientXActivation,
        LLMAttribution,
        LLMGradientAttribution,
        TextTokenInput,
    )

    model, tok = backend.model, backend.tokenizer
    embed = model.get_input_embeddings()
    target_ids = torch.tensor(tok(target, add_special_tokens=False)["input_ids"])
    inp = TextTokenInput(prompt, tok)
    if method in ("saliency", "input_x_gradient"):
        layer = LayerGradientXActivation(model, embed, multiply_by_inputs=method == "input_x_gradient")
        llm = LLMGradientAttribution(layer, tok)
        return lambda: llm.attribute(inp, target=target_ids).token_attr.detach().double().numpy()
    if method == "occlusion":
        llm = LLMAttribution(FeatureAblation(model), tok)
        return lambda: llm.attribute(inp, target=target_ids, **kw).token_attr.detach().double().numpy()
    seq = build_sequence(backend, prompt, target)

    def integrated_gradients():
        rows = []
        for t in range(seq.n_targets):
            prefix, goal = seq.ids[: seq.n_prompt + t], int(seq.ids[seq.n_prompt + t])

            def forward(e, goal=goal):
                return torch.log_softmax(model(inputs_embeds=e).logits[:, -1], -1)[:, goal]

            x = embed(prefix[None]).detach().requires_grad_(True)
            attr = IntegratedGradients(forward).attribute(x, n_steps=steps, internal_batch_size=steps)
            rows.append(attr[0, : seq.n_prompt].sum(-1).detach().double().numpy())
        return np.stack(rows)

    return integrated_gradients


# ---- inseq -----------------------------------------------------------------------------------------------


def inseq_fn(backend, prompt: str, target: str, method: str, steps: int) -> Callable[[], np.ndarray]:
    """inseq's step-wise attribution: float64[T, n_prompt + T] (columns past each step are 0 or NaN)."""
    import inseq

    model = inseq.load_model(backend.model, method, tokenizer=backend.tokenizer)
    kw = {"n_steps": steps, "internal_batch_size": steps} if method == "integrated_gradients" else {}

    def run():
        out = model.attribute(
            prompt, prompt + target, show_progress=False, attributed_fn="probability", logprob=True, **kw
        )
        scores = out.sequence_attributions[0].target_attributions.double().numpy()  # [N, T(, D)]
        if method == "saliency":
            scores = np.linalg.norm(scores, axis=-1)
        elif scores.ndim == 3:
            scores = scores.sum(-1)
        return scores.T

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct")
    parser.add_argument(
        "--text", type=Path, help="a UTF-8 text to take prompt and target from (default: built in)"
    )
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--target-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=32, help="integrated gradients' steps")
    parser.add_argument("--methods", default="saliency,input_x_gradient,integrated_gradients,occlusion")
    parser.add_argument("--peers", default="captum,inseq", help="comma-separated peers, or none")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor (it costs as much as a run)")
    parser.add_argument(
        "--slow-peers", action="store_true", help="also the peers' integrated gradients and inseq's occlusion"
    )
    args = parser.parse_args()

    from clearlm.models import load_backend

    torch.set_num_threads(os.cpu_count() or 1)
    backend = load_backend(args.model)
    text = args.text.read_text(encoding="utf-8") if args.text else TEXT
    prompt, target = split_text(backend.tokenizer, args.prompt_tokens, args.target_tokens, text)
    n_prompt = len(backend.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    with torch.no_grad():  # page the weights in before measuring anything, so no tool pays for it
        backend.model(**backend.tokenizer(prompt, return_tensors="pt"))
    peers = [p for p in args.peers.split(",") if p != "none"]
    if "inseq" in peers and importlib.util.find_spec("inseq") is None:
        print("inseq is not installed (make peers): left out", flush=True)
        peers.remove("inseq")
    print(
        f"model {args.model} float32, {torch.get_num_threads()} threads; prompt {n_prompt} tokens, "
        f"target {args.target_tokens} tokens; median of {args.repeats}",
        flush=True,
    )
    if not args.no_floor:
        floor_s, _, _ = timed(floor_fn(backend, prompt, target), args.repeats)
        print(
            f"floor (one shared forward + {args.target_tokens} sequential input-gradient backward passes): "
            f"{floor_s:.2f} s",
            flush=True,
        )

    print(
        f"\n{'method':30} {'tool':18} {'seconds':>9} {'peak MB':>9} {'peer/clearlm':>13} {'rel. error':>11}"
    )
    captum_runs: dict[str, tuple[float, float, np.ndarray]] = {}
    for method in args.methods.split(","):
        slow = method == "integrated_gradients"  # minutes per run: one run, for every tool
        s, mb, ours = timed(
            clearlm_fn(backend, prompt, target, method, args.steps), 1 if slow else args.repeats
        )
        report(Row(method, "clearlm", s, mb), s)
        ours_prompt, ours_s = ours[:, :n_prompt].astype(np.float64), s
        for name, make, kw in peer_runs(method, peers):
            if (slow or (name == "inseq" and method == "occlusion")) and not args.slow_peers:
                continue
            repeats = 1 if method in ("integrated_gradients", "occlusion") else args.repeats
            s, mb, theirs = timed(make(backend, prompt, target, method, args.steps, **kw), repeats)
            theirs = theirs[:, :n_prompt]
            compared = not (method == "saliency" and name == "captum") and not (
                method == "occlusion" and name == "inseq"
            )
            report(Row(method, name, s, mb, rel_err(ours_prompt, theirs) if compared else None), ours_s)
            if name == "captum":
                captum_runs[method] = (s, mb, theirs)

    # Sequence level: the whole target's log-probability. Captum's seq_attr comes out of its token-level
    # run above (it sums the token rows), so that run is its time; for these linear methods the values match.
    for method in ("input_x_gradient", "integrated_gradients"):
        if method not in args.methods.split(","):
            continue
        s, mb, ours = timed(
            clearlm_fn(backend, prompt, target, method, args.steps, sequence=True),
            1 if method == "integrated_gradients" else args.repeats,
        )
        name = f"{method} (sequence)"
        report(Row(name, "clearlm", s, mb), s)
        if method in captum_runs:
            peer_s, peer_mb, theirs = captum_runs[method]
            err = rel_err(ours[0, :n_prompt].astype(np.float64), theirs.sum(0))
            report(Row(name, "captum seq_attr", peer_s, peer_mb, err), s)


def peer_runs(method: str, peers: list[str]):
    """(peer name, function making the run, keyword arguments) for each peer of ``method``."""
    runs = []
    if "captum" in peers:
        if method == "occlusion":
            runs += [
                ("captum", captum_fn, {"forward_in_tokens": True}),
                ("captum (sequence)", captum_fn, {"forward_in_tokens": False}),
            ]
        else:
            runs.append(("captum", captum_fn, {}))
    if "inseq" in peers:
        runs.append(("inseq", inseq_fn, {}))
    return runs


def report(r: Row, clearlm_seconds: float) -> None:
    """Print one row of the table as soon as it is measured (the peers take minutes)."""
    err = "-" if r.rel_err is None else f"{r.rel_err:.1e}"
    ratio = r.seconds / clearlm_seconds
    print(f"{r.method:30} {r.tool:18} {r.seconds:9.2f} {r.peak_mb:9.0f} {ratio:13.2f} {err:>11}", flush=True)


if __name__ == "__main__":
    main()
