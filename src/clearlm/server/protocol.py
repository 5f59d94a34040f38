"""The OpenAI API's request and response shapes (pydantic), plus clearlm's extensions.

Only shapes live here: no logic, no routes. Field names and defaults follow the OpenAI API reference.
Unknown fields are ignored (clients send provider-specific extras); known fields are type-checked.

Every size a caller controls is bounded by a named constant below, stated in its field's description (so in
``/openapi.json``); a request past a bound gets 400 (413 for the body as a whole) with an OpenAI-style error
body, never a 5xx.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from clearlm.errors import InvalidInputError
from clearlm.explain import METHODS
from clearlm.models.backends.base import MIN_TEMPERATURE  # below it, decoding is greedy

# ---- bounds (each documented where it applies)

MAX_BODY_BYTES = 32 * 2**20  # a request body (JSON); a larger one gets 413
MAX_MODEL_CHARS = 256  # a model name
MAX_USER_CHARS = 256  # the caller's end-user id
MAX_MESSAGES = 512  # messages in one chat request
MAX_MESSAGE_CHARS = 200_000  # one message's content (all its parts), a completion prompt, a forced target
MAX_CONTENT_PARTS = 64  # parts of one message's content
MAX_IMAGES = 8  # image parts in one chat request (each is described: about a second of CPU per image)
MAX_NAME_CHARS = 64  # a message's participant name, a JSON schema's name
MAX_STOPS = 4  # stop sequences (the OpenAI API's limit)
MAX_STOP_CHARS = 256  # one stop sequence
MAX_N = 16  # choices per request
MAX_TOKENS = 2**20  # max_tokens; the model's context is the tighter bound (400 context_length_exceeded)
MAX_TOP_K = (
    2**31 - 1
)  # top_k (a 32-bit integer in llama.cpp; at or above the vocabulary it keeps every token)
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1  # a 64-bit signed seed, as the OpenAI API
MAX_TOP_LOGPROBS = 20  # chat: alternatives per token
MAX_COMPLETION_LOGPROBS = 5  # completions: alternatives per token
MAX_EMBEDDING_INPUTS = 2048  # texts per /v1/embeddings request (the OpenAI API's limit)
MAX_EMBEDDING_CHARS = 32_768  # one text to embed (the model reads its first 256 tokens)
MAX_DIMENSIONS = 4096  # embeddings' dimensions (the model's own is the only one accepted)
MAX_IG_STEPS = 1024  # integrated gradients: gradient evaluations per target token (default 512)
MAX_EXPLAIN_BATCH = 64  # internal_batch_size, rows_per_call, batch_size: rows per forward/backward pass
MAX_LAYER_INDEX = 1024  # attention: layer and head indices (the model's own sizes are checked too)
MAX_CONTRAST_CHARS = 1024  # contrastive: the contrast text; occlusion: the baseline token's text
MAX_TARGET_CHARS = 8192  # /v1/explain: a target to force
MAX_ID_CHARS = 64  # an id (completion, key)
MAX_KB_K = 20  # chat: passages retrieved from a knowledge base
MAX_ABLATIONS = 256  # chat: context-attribution forward passes
MAX_SEARCH_K = 100  # /v1/kb/{name}/search: passages returned
MAX_QUERY_CHARS = 4096  # a knowledge-base search query
MAX_PATH_PREFIX_CHARS = 256  # a search's path_prefix
MAX_UPLOAD_FILES = 64  # files per upload request
MAX_FILE_BYTES = 16 * 2**20  # one uploaded file, decoded; a larger one gets 413
MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS = 16, 254  # a knowledge base's chunk size (embedding-model tokens)
MAX_OVERLAP = MAX_CHUNK_TOKENS // 2  # tokens shared by neighbouring chunks (at most half a chunk)
MAX_KEY_NAME_CHARS = 128  # an API key's name
MAX_AUDIT_PAGE = 1000  # records per GET /v1/audit
MAX_TOOLS = 128  # tools per chat request (the OpenAI API's limit)
MAX_TOOL_CALLS = 128  # tool calls in one assistant message
MAX_ARGUMENTS_CHARS = MAX_MESSAGE_CHARS  # one call's arguments (JSON text)
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # a function's name (the OpenAI API's rule)

KB_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
FILENAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$"
# relative; no part starts with '.', so none is '.' or '..'
PATH_PREFIX_PATTERN = r"^[A-Za-z0-9_ -][A-Za-z0-9._ -]*(/[A-Za-z0-9_ -][A-Za-z0-9._ -]*)*/?$"
KB_NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
FILENAME_RULE = "1-128 letters, digits, '.', '_', '-' or spaces, starting with a letter or digit (no folders)"


def _matching(pattern: str, message: str, description: str, max_length: int):
    """A string type that must match ``pattern`` (stated in the JSON schema), else 400 with ``message``."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{message}; got {value[:80]!r}")
        return value

    return Annotated[
        str,
        Field(max_length=max_length, description=description, json_schema_extra={"pattern": pattern}),
        AfterValidator(check),
    ]


KnowledgeBaseName = _matching(
    KB_NAME_PATTERN,
    f"a knowledge base name is {KB_NAME_RULE}",
    f"A knowledge base's name: {KB_NAME_RULE}.",
    64,
)
FileName = _matching(
    FILENAME_PATTERN,
    f"bad file name: use a plain name, {FILENAME_RULE}",
    f"A file's name in its knowledge base: {FILENAME_RULE}; the extension picks the reader.",
    128,
)
PathPrefix = _matching(
    PATH_PREFIX_PATTERN,
    "path_prefix is a relative path inside the knowledge base's uploads (no leading '/', no part starting "
    "with '.')",
    f"Keep passages whose file lies under this relative path (at most {MAX_PATH_PREFIX_CHARS} characters).",
    MAX_PATH_PREFIX_CHARS,
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(BaseModel):
    type: Literal["text"]
    text: str = Field(max_length=MAX_MESSAGE_CHARS, description=f"At most {MAX_MESSAGE_CHARS:,} characters.")


class ImageUrl(BaseModel):
    url: str = Field(
        max_length=MAX_BODY_BYTES,
        description="A data URL, data:image/png;base64,... (PNG, JPEG, GIF, WebP, BMP or TIFF; at most 20 MiB "
        "decoded, else 413, and 40 million pixels); this server fetches nothing, so an http(s) URL gets 400.",
    )
    detail: Literal["auto", "low", "high"] | None = None  # accepted, not used


class ImagePart(BaseModel):
    """clearlm: an image in a user message (``/v1/chat/completions`` only). The model reads its description
    (ImageNet labels, OCR text, a moderation score: ``clearlm.media.images``) in its place; the response's
    ``image_descriptions`` shows it as the model read it (after the input policy)."""

    type: Literal["image_url"]
    image_url: ImageUrl


class FunctionCall(BaseModel):
    name: str = Field(max_length=MAX_NAME_CHARS)
    arguments: str = Field(
        max_length=MAX_ARGUMENTS_CHARS, description="The arguments, a JSON object as text."
    )


class ToolCallIn(BaseModel):
    """A call an earlier assistant message made (sent back in the conversation)."""

    id: str = Field(max_length=MAX_ID_CHARS)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: (
        Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)]
        | Annotated[
            list[Annotated[ContentPart | ImagePart, Field(discriminator="type")]],
            Field(max_length=MAX_CONTENT_PARTS),
        ]
        | None
    ) = Field(
        default=None,
        description=f"Text, or at most {MAX_CONTENT_PARTS} parts (text; in a user message also image_url, at "
        f"most {MAX_IMAGES} images in a request); at most {MAX_MESSAGE_CHARS:,} characters of text in all.",
    )
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    tool_calls: list[ToolCallIn] | None = Field(
        default=None,
        max_length=MAX_TOOL_CALLS,
        description=f"assistant: the calls it made (at most {MAX_TOOL_CALLS}); its content may be null.",
    )
    tool_call_id: str | None = Field(
        default=None, max_length=MAX_ID_CHARS, description="tool: the id of the call this message answers."
    )

    @model_validator(mode="after")
    def _bounded(self):
        texts = [p.text for p in self.content if p.type == "text"] if isinstance(self.content, list) else []
        if sum(map(len, texts)) > MAX_MESSAGE_CHARS:
            raise ValueError(f"a message's content is at most {MAX_MESSAGE_CHARS:,} characters in all")
        if self.role != "user" and self.images():
            raise ValueError("image_url parts are accepted in user messages only")
        return self

    def images(self) -> list[ImagePart]:
        """The message's image parts, in order."""
        return [p for p in self.content if p.type == "image_url"] if isinstance(self.content, list) else []

    def text(self) -> str:
        """The content's text (parts concatenated). Image parts must have been replaced by their
        descriptions first (``server.images``): InvalidInputError otherwise (a route that takes no images)."""
        if self.images():
            raise InvalidInputError(
                "image_url content parts are accepted by /v1/chat/completions only: send text here"
            )
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class JsonSchemaSpec(BaseModel):
    name: str = Field(default="response", max_length=MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    schema_: dict[str, Any] = Field(
        default_factory=dict, alias="schema", json_schema_extra={"minProperties": 1}
    )
    strict: bool | None = None


def _response_format_schema(schema: dict) -> None:
    # json_schema needs its schema (the server refuses it without one)
    schema["anyOf"] = [
        {"properties": {"type": {"enum": ["text", "json_object"]}}},
        {"properties": {"type": {"const": "json_schema"}}, "required": ["json_schema"]},
    ]


class ResponseFormat(BaseModel):
    model_config = ConfigDict(json_schema_extra=_response_format_schema)
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class FunctionDefinition(BaseModel):
    name: Annotated[str, Field(max_length=64, json_schema_extra={"pattern": TOOL_NAME_PATTERN})]
    description: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    parameters: dict[str, Any] | None = Field(
        default=None, description="The arguments' JSON Schema (an object); omitted: no arguments."
    )
    strict: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(TOOL_NAME_PATTERN, value):
            raise ValueError(f"a function's name is 1-64 letters, digits, '_' or '-'; got {value[:80]!r}")
        return value


class Tool(BaseModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    name: str = Field(max_length=64)


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(BaseModel):
    include_usage: bool = False


_BATCH = Field(
    default=None,
    ge=1,
    le=MAX_EXPLAIN_BATCH,
    description=f"Rows per forward/backward pass (1 to {MAX_EXPLAIN_BATCH}); changes speed, not results.",
)
_INDEX = Field(
    default=None,
    ge=-MAX_LAYER_INDEX,
    le=MAX_LAYER_INDEX - 1,
    description="attention: one layer / head (negative counts from the end; None averages); "
    "past the model's own count gets 400.",
)


class ExplainOptions(BaseModel):
    """The options of every attribution method (each method takes some of them: see
    ``clearlm.explain.method_options``; another method's option gets 400). Omitted options take the method's
    default."""

    model_config = ConfigDict(extra="forbid")
    steps: int | None = Field(
        default=None,
        ge=1,
        le=MAX_IG_STEPS,
        description=f"integrated_gradients: gradient evaluations per target token, at most {MAX_IG_STEPS} "
        "(adaptive placement: at least 32).",
    )
    baseline: str | None = Field(
        default=None,
        max_length=MAX_CONTRAST_CHARS,
        description="integrated_gradients: zero, pad or mean; occlusion: the one token put in a source's place.",
    )
    placement: Literal["adaptive", "gauss-legendre", "riemann"] | None = None
    tolerance: float | None = Field(
        default=None, gt=0, lt=1, description="integrated_gradients: relative gap."
    )
    sequence: bool | None = None
    internal_batch_size: int | None = _BATCH
    rows_per_call: int | None = _BATCH
    batch_size: int | None = _BATCH
    contrast: str | None = Field(
        default=None,
        max_length=MAX_CONTRAST_CHARS,
        description=f"contrastive: the text compared against (at most {MAX_CONTRAST_CHARS} characters).",
    )
    position: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TARGET_CHARS,
        description="contrastive: the target step (0-based) whose token a one-token contrast replaces "
        "(default 0).",
    )
    base: Literal["saliency", "input_x_gradient", "integrated_gradients"] | None = None
    layer: int | None = _INDEX
    head: int | None = _INDEX
    unit: Literal["token", "word"] | None = None


def _given(options: ExplainOptions) -> dict[str, Any]:
    """The options given; a null one takes the method's default (as if left out)."""
    return options.model_dump(exclude_unset=True, exclude_none=True)


# Validated as ExplainOptions (typed, bounded, documented), handed on as the dict of the options given.
Options = Annotated[ExplainOptions, AfterValidator(_given)]
_METHOD = Field(
    default="input_x_gradient",
    max_length=64,
    description=f"The attribution method: one of {', '.join(METHODS)}.",
    json_schema_extra={"enum": list(METHODS)},
)


def _method_variants() -> list[dict]:
    """JSON Schema: each method with the options it takes (the server refuses another method's option), so
    that data the schema allows is data the server takes. Without ``method``, the default method's."""
    from clearlm.explain import DEFAULT_METHOD, method_options
    from clearlm.explain.gradient import BASELINES

    props = ExplainOptions.model_json_schema()["properties"]
    variants = []
    for method in METHODS:
        allowed = {k: props[k] for k in method_options(method) if k in props}
        if method == "integrated_gradients":
            allowed["baseline"] = {"enum": list(BASELINES)}
        options = {"type": "object", "properties": allowed, "additionalProperties": False}
        variant: dict = {"properties": {"method": {"const": method}, "options": options}}
        if method != DEFAULT_METHOD:
            variant["required"] = ["method"]
        variants.append(variant)
    return variants


def _explain_spec_schema(schema: dict) -> None:
    schema["anyOf"] = _method_variants()


class ExplainSpec(BaseModel):
    """Which attribution method to run, and its options (see ``clearlm.explain.method_options``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_explain_spec_schema)
    method: str = _METHOD
    options: Options = Field(default_factory=dict)  # type: ignore[assignment]


class KnowledgeSpec(BaseModel):
    """clearlm: answer from a knowledge base. The last user message is the query; ``k`` passages found by
    ``mode`` retrieval go into the prompt numbered for citation. ``attribute``: measure how much the answer
    relied on each passage (context attribution: ``ablations`` forward passes and one backward; not with
    ``stream``)."""

    model_config = ConfigDict(extra="forbid")
    name: KnowledgeBaseName
    k: int = Field(default=5, ge=1, le=MAX_KB_K, description=f"Passages retrieved, 1 to {MAX_KB_K}.")
    mode: Literal["hybrid", "vector", "bm25"] = "hybrid"
    answer: Literal["generate", "extract"] = Field(
        default="generate",
        description="generate: the model answers from the passages; extract: the passages' sentences "
        "closest to the question, quoted and cited (nothing generated).",
    )
    attribute: bool = True
    ablations: int = Field(
        default=16, ge=2, le=MAX_ABLATIONS, description=f"Forward passes, 2 to {MAX_ABLATIONS}."
    )


def _greedy_below_min(value: float) -> float:
    return 0.0 if value < MIN_TEMPERATURE else value


def _stops(value):
    """Friendlier messages than the schema's for the commonest mistakes (other shapes: the schema's)."""
    stops = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    if len(stops) > MAX_STOPS:
        raise ValueError(f"at most {MAX_STOPS} stop sequences")
    if any(s == "" for s in stops):
        raise ValueError("stop sequences must not be empty")
    return value


class _Sampling(_Request):
    model: str = Field(max_length=MAX_MODEL_CHARS, description="The served model's id (GET /v1/models).")
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        description=f"Tokens to generate at most (1 to {MAX_TOKENS:,}, and no more than the context holds).",
    )
    temperature: Annotated[float, AfterValidator(_greedy_below_min)] = Field(
        default=1.0,
        ge=0,
        le=2,
        description=f"0 to 2; below {MIN_TEMPERATURE:g}, greedy decoding (as 0: dividing the logits by a "
        "smaller one overflows them).",
    )
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(
        default=0, ge=0, le=MAX_TOP_K, description=f"0 keeps every token; at most {MAX_TOP_K} (an extension)."
    )
    seed: int | None = Field(
        default=None,
        ge=SEED_MIN,
        le=SEED_MAX,
        description="A 64-bit signed integer: the same seed, the same draw.",
    )
    stop: (
        Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]
        | Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]], Field(max_length=MAX_STOPS)
        ]
        | None
    ) = Field(
        default=None,
        description=f"At most {MAX_STOPS} non-empty sequences of at most {MAX_STOP_CHARS} characters each.",
    )
    n: int = Field(default=1, ge=1, le=MAX_N, description=f"Choices to generate, 1 to {MAX_N}.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, max_length=MAX_USER_CHARS)

    @field_validator("stop", mode="before")
    @classmethod
    def _at_most_four_stops(cls, value):
        return _stops(value)


# a message with some text in it (the server refuses a list of messages that are all empty)
_SOME_TEXT = {
    "type": "object",
    "required": ["content"],
    "properties": {
        "content": {
            "anyOf": [
                {"type": "string", "pattern": "\\S"},
                {"type": "array", "contains": {"properties": {"text": {"type": "string", "pattern": "\\S"}}}},
            ]
        }
    },
}

# top_logprobs needs logprobs: true; explain is not taken with stream: true
_CHAT_DEPENDENCIES = {
    "top_logprobs": {"required": ["logprobs"], "properties": {"logprobs": {"const": True}}},
    "explain": {"properties": {"stream": {"const": False}}},
}


def _chat_schema(schema: dict) -> None:
    schema["dependentSchemas"] = _CHAT_DEPENDENCIES


def _explain_request_schema(schema: dict) -> None:
    schema["dependentSchemas"] = _CHAT_DEPENDENCIES
    schema["allOf"] = [
        {"anyOf": _method_variants()},
        {  # something to explain: messages, or an earlier completion
            "anyOf": [
                {"required": ["messages"], "properties": {"messages": {"minItems": 1}}},
                {"required": ["completion_id"], "properties": {"completion_id": {"type": "string"}}},
            ]
        },
    ]


class ChatCompletionRequest(_Sampling):
    model_config = ConfigDict(json_schema_extra=_chat_schema)
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=MAX_MESSAGES,
        description=f"1 to {MAX_MESSAGES} messages, at least one with some text.",
        json_schema_extra={"contains": _SOME_TEXT},
    )
    max_completion_tokens: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS, description="The newer name of max_tokens (same bounds)."
    )
    logprobs: bool = False
    top_logprobs: int | None = Field(
        default=None, ge=0, le=MAX_TOP_LOGPROBS, description=f"0 to {MAX_TOP_LOGPROBS}; needs logprobs."
    )
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(
        default=None, max_length=MAX_TOOLS, description=f"Functions the model may call, at most {MAX_TOOLS}."
    )
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = Field(
        default=None,
        description="none: answer in text; auto (the default with tools): text or calls; required: calls; "
        "a named function: a call of it. Calls' arguments always validate against their schema.",
    )
    parallel_tool_calls: bool = Field(default=True, description="Several calls in one answer.")
    explain: bool | ExplainSpec | None = None  # clearlm: attach an attribution of the answer
    knowledge_base: KnowledgeBaseName | KnowledgeSpec | None = None  # clearlm: answer from it, with citations


class CompletionRequest(_Sampling):
    prompt: (
        Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]
        | Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]],
            Field(min_length=1, max_length=1),
        ]
    ) = Field(description=f"One prompt (a list holds exactly one), at most {MAX_MESSAGE_CHARS:,} characters.")
    logprobs: int | None = Field(
        default=None,
        ge=0,
        le=MAX_COMPLETION_LOGPROBS,
        description=f"Alternatives per token, 0 to {MAX_COMPLETION_LOGPROBS}.",
    )
    echo: bool = False
    max_tokens: int | None = Field(
        default=16,
        ge=1,
        le=MAX_TOKENS,
        description="The completions API's default is 16 (same bounds as chat).",
    )


class EmbeddingRequest(_Request):
    model: str = Field(max_length=MAX_MODEL_CHARS)
    input: (
        Annotated[str, Field(min_length=1, max_length=MAX_EMBEDDING_CHARS)]
        | Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_EMBEDDING_CHARS)]],
            Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS),
        ]
    ) = Field(
        description=f"A text, or 1 to {MAX_EMBEDDING_INPUTS} texts, each at most {MAX_EMBEDDING_CHARS:,} "
        "characters (the model reads the first 256 tokens)."
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=MAX_DIMENSIONS)
    user: str | None = Field(default=None, max_length=MAX_USER_CHARS)


class ExplainRequest(ChatCompletionRequest):
    """``/v1/explain``: a chat completion's body plus the method; or ``completion_id`` to explain an
    earlier response of this server (its prompt and output are read from the audit log; another tenant's
    response is not found)."""

    model_config = ConfigDict(json_schema_extra=_explain_request_schema)
    # refused here with a message that says where it goes (/v1/chat/completions); not part of the schema
    knowledge_base: SkipJsonSchema[str | KnowledgeSpec | None] = None  # type: ignore[assignment]

    messages: list[ChatMessage] = Field(
        default_factory=list,
        max_length=MAX_MESSAGES,
        description=f"At most {MAX_MESSAGES} messages, at least one with some text (or give completion_id).",
        json_schema_extra={"contains": _SOME_TEXT},
    )
    model: str | None = Field(default=None, max_length=MAX_MODEL_CHARS)  # type: ignore[assignment]
    method: str = _METHOD
    options: Options = Field(default_factory=dict)  # type: ignore[assignment]
    completion_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    target: str | None = Field(
        default=None,
        max_length=MAX_TARGET_CHARS,
        description=f"A continuation to force instead of generating one (at most {MAX_TARGET_CHARS:,} "
        "characters).",
    )
    stream: bool = Field(
        default=False,
        description="Server-sent events: {object: explanation.progress, stage, done, total} while the "
        "work runs, then the explanation body, then [DONE]; closing the connection stops the work "
        "(recorded as 499).",
    )
    faithfulness: bool = Field(
        default=False,
        description="Also measure the explanation's faithfulness (comprehensiveness, sufficiency, Soft-NC, "
        "Soft-NS, next to a random attribution's): extra forward passes; not with unit=word or sequence.",
    )


# Responses


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobOut(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class DeltaFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None

    @model_serializer(mode="wrap")
    def _no_nulls(self, handler):  # as the OpenAI API streams them: only the fields a piece has
        return {k: v for k, v in handler(self).items() if v is not None}


class DeltaToolCall(BaseModel):
    """A piece of a streamed call: ``id``, ``type`` and the function's name on its first piece, then
    pieces of its arguments (concatenate them)."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: DeltaFunction | None = None

    @model_serializer(mode="wrap")
    def _no_nulls(self, handler):
        return {k: v for k, v in handler(self).items() if v is not None}


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None
    explanation: dict[str, Any] | None = None  # clearlm
    citations: dict[str, Any] | None = None  # clearlm: a CitedAnswer, with knowledge_base
    ai_generated: dict[str, Any] | None = None  # clearlm: the disclosure mark
    image_descriptions: list[dict[str, Any]] | None = None  # clearlm: each image part, as the model read it


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    citations: dict[str, Any] | None = None  # clearlm: on the chunk that ends a choice, with knowledge_base
    ai_generated: dict[str, Any] | None = None  # on the chunk that ends a choice
    image_descriptions: list[dict[str, Any]] | None = None  # on the chunk that ends choice 0, with images


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: CompletionLogprobs | None = None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    ai_generated: dict[str, Any] | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "clearlm"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# clearlm: knowledge bases (/v1/kb)


class KnowledgeBaseCreate(_Request):
    """``POST /v1/kb``: a new knowledge base of the caller's tenant; chunk sizes in the embedding model's
    tokens."""

    name: KnowledgeBaseName
    chunk_tokens: int | None = Field(
        default=None,
        ge=MIN_CHUNK_TOKENS,
        le=MAX_CHUNK_TOKENS,
        description=f"Chunk size, {MIN_CHUNK_TOKENS} to {MAX_CHUNK_TOKENS} tokens (default 200).",
    )
    overlap: int | None = Field(
        default=None,
        ge=0,
        le=MAX_OVERLAP,
        description="Tokens shared by neighbouring chunks, 0 to half the chunk size (default 40).",
    )


class UploadedFile(_Request):
    """A document sent to ``POST /v1/kb/{name}/files``: its file name (the extension picks the reader: .txt
    .md .html .pdf) and its content, as text or base64 (binary formats such as PDF)."""

    filename: FileName
    content: str = Field(
        max_length=(MAX_FILE_BYTES * 4) // 3 + 4,
        description=f"The file's content; at most {MAX_FILE_BYTES // 2**20} MiB once decoded (else 413).",
    )
    encoding: Literal["utf-8", "base64"] = "utf-8"


class KnowledgeBaseFiles(_Request):
    files: list[UploadedFile] = Field(
        min_length=1,
        max_length=MAX_UPLOAD_FILES,
        description=f"1 to {MAX_UPLOAD_FILES} files; the whole body at most {MAX_BODY_BYTES // 2**20} MiB "
        "(else 413).",
    )


class KnowledgeBaseSearch(_Request):
    """``POST /v1/kb/{name}/search``: see ``KnowledgeBase.search`` for the modes and MMR."""

    query: str = Field(
        min_length=1, max_length=MAX_QUERY_CHARS, description=f"1 to {MAX_QUERY_CHARS:,} characters."
    )
    k: int = Field(default=5, ge=1, le=MAX_SEARCH_K, description=f"Passages, 1 to {MAX_SEARCH_K}.")
    mode: Literal["hybrid", "vector", "bm25"] = "hybrid"
    mmr: float | None = Field(default=None, ge=0, le=1, description="MMR's lambda, 0 to 1 (None: no MMR).")
    path_prefix: PathPrefix | None = None


# clearlm: API keys and the audit log (/v1/keys, /v1/audit: admin keys only)


class KeyCreate(_Request):
    """``POST /v1/keys``: a new key of the caller's tenant."""

    name: str = Field(
        min_length=1, max_length=MAX_KEY_NAME_CHARS, description="Who or what will use the key."
    )
    scope: Literal["admin", "user"] = Field(
        default="user",
        description="user: the model and knowledge-base endpoints; admin: also the tenant's keys and audit log.",
    )


class KeyInfo(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    prefix: str = Field(description="The secret's first characters, to recognise it by.")
    tenant: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class CreatedKey(KeyInfo):
    secret: str = Field(description="The key itself: shown once, never again (only its hash is stored).")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyInfo]


class AuditPage(BaseModel):
    """Records of the caller's tenant in the order they were written; ``has_more``: more match."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    has_more: bool


# Errors


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every error, as the OpenAI API shapes it."""

    error: ErrorDetail
