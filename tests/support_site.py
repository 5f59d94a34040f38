"""Helpers of the support widget's browser tests (tests/server/test_support_widget.py,
tests/web/test_support_end_to_end.py): a plain static web server of another origin (``site``) and a page on
it that embeds the widget with one script tag, and the sample desk's returns flow's replies to
"I am returning order A-10002" then "changed mind" (order A-10002 was delivered 45 days ago)."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

ASK_REASON = "Why are you returning it: damaged, wrong item, or changed mind?"
LATE = (
    "Order A-10002 was delivered 45 days ago, past our 30-day window. I am passing you to a colleague "
    "who can look at exceptions."
)


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def site(tmp_path):
    """A plain static web server on 127.0.0.1 (another port: another origin) serving tmp_path/site."""
    root = tmp_path / "site"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    httpd.root = root
    httpd.origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def page_with_widget(site, file: str, server, **attributes: str) -> str:
    """Write a plain page that embeds the widget with one tag; its URL."""
    attrs = " ".join(f'data-{k}="{v}"' for k, v in attributes.items())
    (site.root / file).write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'><title>A shop</title></head>"
        "<body><main><h1>A shop</h1><p>Our products.</p></main>"
        f'<script src="{server.base}/support/widget.js" {attrs}></script></body></html>'
    )
    return f"{site.origin}/{file}"
