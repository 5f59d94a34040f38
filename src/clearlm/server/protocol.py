"""The OpenAI API's request and response shapes (pydantic), plus clearlm's extensions.

Only shapes live here: no logic, no routes. Field names and defaults follow the OpenAI API reference.
Unknown fields are ignored (clients send provider-specific extras); known fields are type-checked.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class JsonSchemaSpec(BaseModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ExplainSpec(BaseModel):
    """Which attribution method to run, and its options (see ``clearlm.explain.method_options``)."""

    model_config = ConfigDict(extra="forbid")
    method: str = "input_x_gradient"
    options: dict[str, Any] = Field(default_factory=dict)


class KnowledgeSpec(BaseModel):
    """clearlm: answer from a knowledge base. The last user message is the query; ``k`` passages found by
    ``mode`` retrieval go into the prompt numbered for citation. ``attribute``: measure how much the answer
    relied on each passage (context attribution: ``ablations`` forward passes and one backward; not with
    ``stream``)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    k: int = Field(default=5, ge=1, le=20)
    mode: Literal["hybrid", "vector", "bm25"] = "hybrid"
    attribute: bool = True
    ablations: int = Field(default=16, ge=2, le=256)


class _Sampling(_Request):
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)  # an extension, as in vLLM and llama.cpp's server
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value):
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must not be empty")
        return value


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    explain: bool | ExplainSpec | None = None  # clearlm: attach an attribution of the answer
    knowledge_base: str | KnowledgeSpec | None = None  # clearlm: answer from it, with citations


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool = False
    max_tokens: int | None = Field(default=16, ge=1)  # the completions API's default is 16


class EmbeddingRequest(_Request):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class ExplainRequest(ChatCompletionRequest):
    """``/v1/explain``: a chat completion's body plus the method; or ``completion_id`` to explain an
    earlier response of this server (its prompt and output are read from the audit log)."""

    messages: list[ChatMessage] = Field(default_factory=list)
    model: str | None = None  # type: ignore[assignment]
    method: str = "input_x_gradient"
    options: dict[str, Any] = Field(default_factory=dict)
    completion_id: str | None = None
    target: str | None = None  # a continuation to force instead of generating one


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


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None


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


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


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
    """``POST /v1/kb``: a new knowledge base; chunk sizes in the embedding model's tokens."""

    name: str
    chunk_tokens: int | None = None
    overlap: int | None = None


class UploadedFile(_Request):
    """A document sent to ``POST /v1/kb/{name}/files``: its file name (the extension picks the reader: .txt
    .md .html .pdf) and its content, as text or base64 (binary formats such as PDF)."""

    filename: str
    content: str
    encoding: Literal["utf-8", "base64"] = "utf-8"


class KnowledgeBaseFiles(_Request):
    files: list[UploadedFile] = Field(min_length=1)


class KnowledgeBaseSearch(_Request):
    """``POST /v1/kb/{name}/search``: see ``KnowledgeBase.search`` for the modes and MMR."""

    query: str
    k: int = 5
    mode: Literal["hybrid", "vector", "bm25"] = "hybrid"
    mmr: float | None = None
    path_prefix: str | None = None
