"""The web UI's speed goals (issue 12), in headless Chromium against ``clearlm serve`` on loopback:

    first paint     first-contentful-paint of the chat page (an empty conversation), median of --runs
                    fresh browser contexts (nothing cached); goal: under 1 s
    page weight     bytes of every response the chat page loads before any conversation data (HTML, CSS,
                    JS); goal: under 300 KB
    500 messages    a conversation of 500 messages (Markdown with code blocks, the way a long support or
                    tutoring history looks): time to first paint and to the load event, the longest main-
                    thread task while opening it, and while scrolling it from the end to the top in 40
                    steps the longest gap between two animation frames (a stall a person sees is > 100 ms;
                    60 frames a second is a 16.7 ms gap); goal: no visible stall

The server is a real subprocess (the default model, SQLite in a temporary folder); the conversation is
written straight into its database (``store.conversations``) so that no generation is timed.

    python benchmarks/bench_web.py               # 5 runs
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CHROMIUM = os.environ.get("CLEARLM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
ANSWER = """Here is how to check the routing table:

1. Run `ip route show` to list the routes.
2. The line starting with `default` is the gateway.

```bash
ip route show
ip -6 route show table main
```

| column | meaning |
|---|---|
| dev | the interface |
| via | the next hop |
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(db: str, port: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "clearlm.cli",
        "serve",
        "--port",
        str(port),
        "--db",
        db,
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not start in 300 s")


def long_conversation(db: str, messages: int) -> str:
    from clearlm.store import Database
    from clearlm.store.conversations import Conversations

    conversations = Conversations(Database(db))
    conv = conversations.create("default", "local", title=f"{messages} messages")
    for i in range(messages // 2):
        conversations.append_message(conv["id"], "user", f"Question {i}: how do I see the routing table?")
        meta = {"ai_generated": {"generator": "bench", "model": "qwen2.5-0.5b-instruct"}}
        conversations.append_message(conv["id"], "assistant", ANSWER, meta=meta)
    return conv["id"]


PAINT = "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
OBSERVE_LONG_TASKS = """() => { window.__longest = 0; new PerformanceObserver(list => { for (const e of
  list.getEntries()) window.__longest = Math.max(window.__longest, e.duration); })
  .observe({type: 'longtask', buffered: true}); }"""
SCROLL = """async () => {
  const box = document.querySelector('.messages, #messages, main');
  const target = box && box.scrollHeight > box.clientHeight ? box : document.scrollingElement;
  let last = performance.now(), gap = 0;
  for (let i = 40; i >= 0; i--) {
    target.scrollTop = target.scrollHeight * i / 40;
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now(); gap = Math.max(gap, now - last); last = now;
  }
  return {gap, height: target.scrollHeight};
}"""


def measure(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.ok else None)
    page.add_init_script(OBSERVE_LONG_TASKS.replace("() => {", "(() => {", 1) + ")()")
    started = time.perf_counter()
    page.goto(url, wait_until="load")
    loaded = time.perf_counter() - started
    for _ in range(100):  # (wait_for_function would eval a string, which the page's CSP forbids)
        if page.evaluate(PAINT) is not None:
            break
        time.sleep(0.05)
    out = {
        "paint_ms": page.evaluate(PAINT),
        "load_ms": loaded * 1000,
        "bytes": sum(sizes),
        "longest_task_ms": page.evaluate("() => window.__longest"),
        **page.evaluate(SCROLL),
    }
    context.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'clearlm.db'}"
        port = free_port()
        server = start(db, port)
        try:
            base = f"http://127.0.0.1:{port}"
            long_id = long_conversation(db, args.messages)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                sign_in = browser.new_context()
                sign_in.new_page().goto(base + "/signin?next=/chat")  # open access: sets the cookie
                state = sign_in.storage_state()
                sign_in.close()
                browser.new_context = _with_state(browser.new_context, state)
                empty = [measure(browser, base + "/chat") for _ in range(args.runs)]
                full = [measure(browser, f"{base}/chat/{long_id}") for _ in range(args.runs)]
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    print(f"chat page, empty conversation ({args.runs} runs, medians):")
    print(
        f"  first paint      {med(empty, 'paint_ms'):7.0f} ms   goal < 1000 ms  ratio {med(empty, 'paint_ms') / 1000:.2f}"
    )
    print(
        f"  page weight      {med(empty, 'bytes') / 1024:7.1f} KB   goal < 300 KB   ratio {med(empty, 'bytes') / 1024 / 300:.2f}"
    )
    print(f"conversation of {args.messages} messages:")
    print(f"  first paint      {med(full, 'paint_ms'):7.0f} ms")
    print(f"  load event       {med(full, 'load_ms'):7.0f} ms")
    print(f"  longest task     {med(full, 'longest_task_ms'):7.0f} ms   (opening it)")
    print(f"  longest frame gap while scrolling {med(full, 'gap'):5.0f} ms   goal < 100 ms (a visible stall)")
    print(f"  page weight      {med(full, 'bytes') / 1024:7.1f} KB   (with the conversation)")


def _with_state(new_context, state):
    def make(**kwargs):
        return new_context(storage_state=state, **kwargs)

    return make


if __name__ == "__main__":
    main()
