"""The web UI, served by ``clearlm serve`` at ``/`` (the API stays at ``/v1``).

Server-rendered pages (Jinja2 templates, autoescaped) with a little plain JavaScript from ``static/``;
nothing is fetched from elsewhere, and a strict Content-Security-Policy forbids it. The pages are thin:
whatever they show or change, they read and write through the same ``/v1`` API a program uses, signed in
with a session cookie instead of a bearer key (``server.auth``), so tenants, scopes, policies and the audit
log apply to a person exactly as to a program.
"""

from clearlm.web.app import install

__all__ = ["install"]
