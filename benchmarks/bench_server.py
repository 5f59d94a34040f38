"""Serving speed: ``clearlm serve --backend llamacpp`` against llama-cpp-python itself, in one run.

Measures, on the same GGUF and prompt, with greedy decoding and the same thread count:
    single stream   decode tokens/s (first token to last) through the server's streaming chat API with
                    the official ``openai`` client, against llama-cpp-python's own ``create_completion``
                    streaming in this process; goal: ratio >= 0.9.
    N streams       aggregate tokens/s of N concurrent streaming clients (the server decodes them together
                    in parallel slots), request start to last token, against one stream measured the same
                    way (prefill included on both sides); goal: >= 2x at N = 8.
    time to first token for a ~650-token prompt, both ways (llama-cpp-python's prefix cache reset first).

Each figure is the median of ``--runs`` runs. The server runs as a real subprocess on loopback.

    python benchmarks/bench_server.py                 # 64 tokens per stream, 8 streams, 3 runs
    python benchmarks/bench_server.py --tokens 8 --streams 2 --runs 1   # the quick check CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx2 as httpx
import openai

from clearlm.models import DEFAULT_MODEL

STORY = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."
LONG = (
    "The history of the lighthouse at the edge of the northern bay is long and full of storms. " * 30
).strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, streams: int, db: str, threads: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "clearlm.cli", "serve", "--model", model, "--backend", "llamacpp"]
    cmd += ["--port", str(port), "--max-active", str(streams), "--db", db, "--log-level", "warning"]
    cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server failed to start:\n" + proc.stderr.read().decode())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not become ready in 300 s")


def chat_prompt(tokenizer, text: str) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )


def direct_stream(llm, prompt: str, tokens: int) -> tuple[float, float, int]:
    """(time to first token s, decode tokens/s after it, tokens) with llama-cpp-python's own API."""
    llm.reset()  # no reuse of the previous run's prompt
    start = time.perf_counter()
    first = None
    n = 0
    for _ in llm.create_completion(prompt, max_tokens=tokens, temperature=0, stream=True):
        n += 1
        first = first or time.perf_counter()
    end = time.perf_counter()
    return first - start, (n - 1) / (end - first), n


async def server_stream(client, model: str, text: str, tokens: int) -> tuple[float, float, int, float, float]:
    """(ttft s, decode tokens/s, tokens, start, end) of one streaming chat request."""
    start = time.perf_counter()
    first = None
    n = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        max_tokens=tokens,
        temperature=0,
        stream=True,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    return first - start, (n - 1) / max(end - first, 1e-9), n, start, end


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--tokens", type=int, default=64, help="tokens per stream")
    parser.add_argument("--streams", type=int, default=8, help="concurrent streams")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="llama.cpp threads, both sides")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from clearlm.models import get_spec
    from clearlm.models.backends.llamacpp_backend import import_llama
    from clearlm.models.pull import ensure_checkpoint, ensure_gguf

    spec = get_spec(args.model)
    gguf = str(ensure_gguf(spec))
    tokenizer = AutoTokenizer.from_pretrained(ensure_checkpoint(spec))  # the chat template the server uses
    llm = import_llama()(model_path=gguf, n_ctx=4096, n_threads=args.threads, verbose=False)
    story, long_prompt = chat_prompt(tokenizer, STORY), chat_prompt(tokenizer, LONG)
    print(
        f"model {args.model} ({os.path.basename(gguf)}), {args.threads} threads, {args.tokens} tokens per stream"
    )
    print(f"long prompt: {len(llm.tokenize(long_prompt.encode()))} tokens")

    direct = [direct_stream(llm, story, args.tokens) for _ in range(args.runs)]
    direct_ttft = [direct_stream(llm, long_prompt, 2)[0] for _ in range(args.runs)]
    del llm
    direct_tps = statistics.median(d[1] for d in direct)
    print(
        f"llama-cpp-python       single stream {direct_tps:7.2f} tok/s   ttft(long) {statistics.median(direct_ttft):.3f} s"
    )

    port = free_port()
    db = "sqlite:///" + os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench-server-{port}.db")
    proc = start_server(args.model, port, args.streams, db, args.threads)
    try:

        async def run():
            client = openai.AsyncOpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=600
            )
            await server_stream(client, args.model, STORY, 4)  # warm-up
            single = [await server_stream(client, args.model, STORY, args.tokens) for _ in range(args.runs)]
            whole = [r[2] / (r[4] - r[3]) for r in single]  # start to last token, as for the N streams
            ttft = [(await server_stream(client, args.model, LONG, 2))[0] for _ in range(args.runs)]
            aggregate = []
            for _ in range(args.runs):
                results = await asyncio.gather(
                    *(server_stream(client, args.model, STORY, args.tokens) for _ in range(args.streams))
                )
                wall = max(r[4] for r in results) - min(r[3] for r in results)
                aggregate.append(sum(r[2] for r in results) / wall)
            return single, whole, ttft, aggregate

        single, whole, ttft, aggregate = asyncio.run(run())
    finally:
        proc.terminate()
        proc.wait(30)
    single_tps = statistics.median(s[1] for s in single)
    agg = statistics.median(aggregate)
    one = statistics.median(whole)
    print(
        f"clearlm serve          single stream {single_tps:7.2f} tok/s   ttft(long) {statistics.median(ttft):.3f} s"
    )
    print(f"clearlm serve          1 stream      {one:7.2f} tok/s, request start to last token")
    print(
        f"clearlm serve          {args.streams} streams     {agg:7.2f} tok/s aggregate, first start to last token"
    )
    print(f"ratio single stream, server / llama-cpp-python: {single_tps / direct_tps:.2f}  (goal >= 0.9)")
    print(
        f"ratio {args.streams} streams aggregate / single stream:   {agg / one:.2f}  (goal >= 2 at 8 streams)"
    )


if __name__ == "__main__":
    main()
