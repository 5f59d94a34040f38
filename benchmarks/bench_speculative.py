"""Speculative decoding on llama.cpp: qwen2.5-1.5b-instruct alone against the same model with
qwen2.5-0.5b-instruct as its draft, in one run (llama.cpp's own server, one stream, greedy).

The two models share Qwen2.5's vocabulary, which a draft model must. Reports decode tokens/s of each
(the server's own ``timings.predicted_per_second``), the speedup, and the draft's acceptance rate
(``draft_n_accepted / draft_n`` over all requests). Greedy decoding makes both answers identical, which
it checks.

    python benchmarks/bench_speculative.py --llama-server PATH   # needs: clearlm models pull qwen2.5-1.5b-instruct
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import httpx2 as httpx
from bench_server import QUESTIONS, SYSTEM, free_port


def serve(llama_server: str, target: str, draft: str | None, draft_max: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [llama_server, "-m", target, "--port", str(port), "-c", "4096", "-t", str(os.cpu_count())]
    cmd += ["--jinja", "--no-webui", "-np", "1"]
    if draft:
        cmd += [
            "-md",
            draft,
            "--spec-type",
            "draft-simple",
            "--spec-draft-n-max",
            str(draft_max),
            "--spec-draft-n-min",
            "1",
        ]
    log = tempfile.TemporaryFile()  # noqa: SIM115 (open while the server runs)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(log.read().decode()[-3000:])
        time.sleep(0.5)
    raise RuntimeError("llama-server did not start")


def run(port: int, tokens: int) -> list[dict]:
    out = []
    for q in QUESTIONS:
        body = {
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
            "max_tokens": tokens,
            "temperature": 0,
        }
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=600).json()
        out.append({"text": r["choices"][0]["message"]["content"], **r["timings"]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llama-server", default=shutil.which("llama-server"))
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--draft-max", type=int, default=8, help="tokens drafted per step, at most")
    args = parser.parse_args()

    from clearlm.models import get_spec
    from clearlm.models.pull import ensure_gguf

    target = str(ensure_gguf(get_spec("qwen2.5-1.5b-instruct")))
    draft = str(ensure_gguf(get_spec("qwen2.5-0.5b-instruct")))
    results = {}
    for name, d in (("alone", None), ("with draft", draft)):
        proc, port = serve(args.llama_server, target, d, args.draft_max)
        try:
            run(port, 4)  # warm-up
            results[name] = run(port, args.tokens)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)
    med = {k: statistics.median(r["predicted_per_second"] for r in v) for k, v in results.items()}
    drafted = sum(r.get("draft_n", 0) for r in results["with draft"])
    accepted = sum(r.get("draft_n_accepted", 0) for r in results["with draft"])
    same = sum(a["text"] == b["text"] for a, b in zip(results["alone"], results["with draft"], strict=True))
    print(
        f"qwen2.5-1.5b-instruct, {os.cpu_count()} threads, {args.tokens} tokens, {len(QUESTIONS)} questions"
    )
    print(f"alone       {med['alone']:6.2f} tok/s (median)")
    print(f"with draft  {med['with draft']:6.2f} tok/s (median), draft-max {args.draft_max}")
    print(
        f"speedup {med['with draft'] / med['alone']:.2f}x, acceptance {accepted}/{drafted} = {accepted / max(drafted, 1):.2f}"
    )
    print(f"identical answers (greedy): {same}/{len(QUESTIONS)}")


if __name__ == "__main__":
    main()
