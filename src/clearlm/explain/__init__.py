"""Explanations: token-level attribution of generated text to the prompt, renderers and aggregation."""

from clearlm.explain.aggregate import aggregate_words
from clearlm.explain.api import DEFAULT_METHOD, METHODS, explain, method_options
from clearlm.explain.result import Attribution

__all__ = ["DEFAULT_METHOD", "METHODS", "Attribution", "aggregate_words", "explain", "method_options"]
