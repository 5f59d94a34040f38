"""Perturbation scoring on the llama.cpp engine against the in-process torch path, in one run.

Context attribution (ContextCite ablations) of one answer over a prompt of 5 passages of ~200 tokens plus a
question (about 1,150 tokens with the chat template), 16 ablations, a ~40-token answer (the model's own,
greedy): ``context_attribution(..., gradient=False)`` on the torch backend (``scoring.response_logprobs``,
float32, prefix tree with key/value caches, torch threads = cores) and on the llama.cpp backend
(``llamacpp_scoring``: each shared prefix decoded once, logits only where an answer token is predicted),
the two alternating, ``--repeats`` rounds. Prints the medians, the ratio torch / llama.cpp (goal >= 5x),
the positions each path ran and the rate (positions / s), and the max |difference| of the log-probabilities
and of the attribution weights.

    python benchmarks/bench_engine_scoring.py                 # default model, 3 rounds
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from clearlm.explain.context import ContextSources, context_attribution
from clearlm.models import DEFAULT_MODEL, SamplingParams, generate, load_backend

TEXT = Path("/usr/share/common-licenses/GPL-3")
QUESTION = "\n\nQuestion: What must you do when you convey a modified version of the program?"
SYSTEM = "Answer the question from the passages, briefly."


def passages(tokenizer, n: int, tokens: int) -> list[str]:
    """``n`` consecutive chunks of about ``tokens`` tokens from the GPL-3 text (whole lines)."""
    lines = [line.strip() for line in TEXT.read_text().splitlines() if line.strip()][20:]
    out, cur = [], []
    for line in lines:
        cur.append(line)
        if len(tokenizer(" ".join(cur), add_special_tokens=False)["input_ids"]) >= tokens:
            out.append(" ".join(cur))
            cur = []
            if len(out) == n:
                return out
    raise SystemExit(f"{TEXT} is too short for {n} passages of {tokens} tokens")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--passages", type=int, default=5)
    ap.add_argument("--passage-tokens", type=int, default=200)
    ap.add_argument("--response-tokens", type=int, default=40)
    ap.add_argument("--ablations", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--count-torch", action="store_true", help="count torch's positions (one more run)")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    llama = load_backend(args.model, "llamacpp")
    torch_backend = load_backend(args.model, "torch")
    texts = passages(torch_backend.tokenizer, args.passages, args.passage_tokens)
    sources = ContextSources.in_message(texts, before="Passages:\n\n", after=QUESTION, system=SYSTEM)
    full = sources.render([True] * len(texts))
    answer = generate(llama, full, SamplingParams(max_new_tokens=args.response_tokens))
    response = list(answer.token_ids)
    n_prompt = len(llama.encode(full).token_ids)
    print(
        f"prompt {n_prompt} tokens, answer {len(response)} tokens, {args.ablations} ablations, {cores} cores"
    )
    print(f"answer: {answer.text!r}")

    def run(backend):
        started = time.perf_counter()
        result = context_attribution(
            backend, sources, response, ablations=args.ablations, gradient=False, seed=0
        )
        return time.perf_counter() - started, result

    times: dict[str, list[float]] = {"torch": [], "llamacpp": []}
    results = {}
    for r in range(args.repeats):
        for name, backend in (("torch", torch_backend), ("llamacpp", llama)):
            before = llama.scorer.decoded_tokens if name == "llamacpp" else 0
            seconds, results[name] = run(backend)
            times[name].append(seconds)
            if name == "llamacpp":
                positions = llama.scorer.decoded_tokens - before
            print(f"round {r + 1} {name:9s} {seconds:7.2f} s", flush=True)

    from clearlm.models.backends.torch_scoring import response_logprobs

    stats: dict = {"tokens": 0}
    if args.count_torch:  # the same ablations, to count torch's positions (one more, untimed run)
        prompts = [llama.encode(sources.render(m)).token_ids for m in results["torch"].masks]
        response_logprobs(torch_backend.model, prompts, response, stats=stats)
    t_med, l_med = statistics.median(times["torch"]), statistics.median(times["llamacpp"])
    lp = np.abs(results["torch"].logprobs - results["llamacpp"].logprobs)
    w = np.abs(results["torch"].weights - results["llamacpp"].weights)
    print()
    print(f"{'':10s} {'median s':>9s} {'positions':>10s} {'positions/s':>12s}")
    print(f"{'torch':10s} {t_med:9.2f} {stats['tokens']:10d} {stats['tokens'] / t_med:12.1f}")
    print(f"{'llamacpp':10s} {l_med:9.2f} {positions:10d} {positions / l_med:12.1f}")
    print(f"speedup torch / llamacpp: {t_med / l_med:.1f}x (goal >= 5x)")
    print(f"max |log-prob difference|: {lp.max():.4f} nats (mean {lp.mean():.4f})")
    print(f"max |weight difference|: {w.max():.4f} (weights torch {np.round(results['torch'].weights, 3)})")
    print(f"ranking torch {results['torch'].ranking()}  llamacpp {results['llamacpp'].ranking()}")


if __name__ == "__main__":
    main()
