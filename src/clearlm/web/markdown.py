"""Model answers as HTML: Markdown rendered by markdown-it-py (the CommonMark preset plus GFM tables and
strikethrough) with raw HTML off, so any ``<script>`` or ``<img onerror=...>`` in the text comes out as
escaped text; links only to http(s) and mailto (others stay text); no images (the page loads nothing
from elsewhere); fenced code highlighted by Pygments into CSS classes (``.code .k`` ...: the style is in
``static/chat.css``, since the Content-Security-Policy forbids inline styles).
"""

from __future__ import annotations

from functools import lru_cache
from html import escape

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

SAFE_SCHEMES = ("http://", "https://", "mailto:")
MAX_HIGHLIGHT_CHARS = 50_000  # a longer code block is shown unhighlighted (Pygments is slow on huge input)
MAX_CACHED_CHARS = 16_384  # rendered HTML of texts up to this long is kept (4,096 of them at most)
_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, _attrs) -> str:
    """A fenced block as ``<pre class="code"><code class="language-LANG">`` with Pygments' spans."""
    name = (lang or "").strip().split()[0] if (lang or "").strip() else ""
    body = None
    if name and len(code) <= MAX_HIGHLIGHT_CHARS:
        try:
            body = highlight(code, _lexer(name.lower()), _FORMATTER)
        except ClassNotFound:
            body = None
    if body is None:
        body = escape(code, quote=False)
    cls = f' class="language-{escape(name)}"' if name else ""
    return f'<pre class="code"><code{cls}>{body}</code></pre>\n'


@lru_cache(maxsize=64)
def _lexer(name: str):
    return get_lexer_by_name(name)


def _valid_link(url: str) -> bool:
    return url.strip().lower().startswith(SAFE_SCHEMES)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.validateLink = _valid_link

    def link_open(renderer, tokens, idx, options, env):
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        tokens[idx].attrSet("target", "_blank")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def render_markdown(text: str) -> str:
    """``text`` (Markdown) as safe HTML: raw HTML escaped, only http(s)/mailto links, code highlighted.
    Texts up to ``MAX_CACHED_CHARS`` are cached (a long conversation opens again without rendering)."""
    text = text or ""
    return _cached(text) if len(text) <= MAX_CACHED_CHARS else _parser().render(text)


@lru_cache(maxsize=4096)
def _cached(text: str) -> str:
    return _parser().render(text)


def render_plain(text: str) -> str:
    """``text`` as escaped HTML that keeps its line breaks (a person's own message, shown as typed)."""
    return f'<p class="plain">{escape(text or "", quote=False)}</p>'


def pygments_css(selector: str = ".code") -> str:
    """The highlighting style's CSS rules under ``selector`` (pasted into ``static/chat.css``)."""
    return HtmlFormatter(style="default").get_style_defs(selector)


def message_html(message: dict) -> str:
    """A stored chat message as HTML: Markdown rendered for an answer, a person's text as typed."""
    render = render_markdown if message["role"] == "assistant" else render_plain
    return render(message["content"])
