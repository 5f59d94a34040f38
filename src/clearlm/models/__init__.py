"""Models: where weights come from, the cache, chat templates, and the backends behind one protocol."""

from clearlm.models.backends.base import Backend, Chunk, Completion, SamplingParams, generate
from clearlm.models.catalog import CATALOG, DEFAULT_MODEL, ModelSpec, get_spec
from clearlm.models.chat import EncodedPrompt, Message, Prompt, encode_prompt
from clearlm.models.loader import BACKENDS, load_backend, resolve_backend
from clearlm.models.pull import PullHooks, install_state, pull
from clearlm.models.tokens import encode_text, text_tokenizer

__all__ = [
    "BACKENDS",
    "CATALOG",
    "DEFAULT_MODEL",
    "Backend",
    "Chunk",
    "Completion",
    "EncodedPrompt",
    "Message",
    "ModelSpec",
    "Prompt",
    "PullHooks",
    "SamplingParams",
    "encode_prompt",
    "encode_text",
    "generate",
    "get_spec",
    "install_state",
    "load_backend",
    "resolve_backend",
    "pull",
    "text_tokenizer",
]
