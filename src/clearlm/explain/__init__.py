"""Explanations: token-level attribution of generated text to the prompt, renderers and aggregation; and
context attribution of a response to the sources of its prompt (passages, messages)."""

from clearlm.explain.aggregate import aggregate_words
from clearlm.explain.api import DEFAULT_METHOD, METHODS, explain, method_options
from clearlm.explain.context import ContextAttribution, ContextSources, context_attribution
from clearlm.explain.result import Attribution

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "Attribution",
    "ContextAttribution",
    "ContextSources",
    "aggregate_words",
    "context_attribution",
    "explain",
    "method_options",
]
