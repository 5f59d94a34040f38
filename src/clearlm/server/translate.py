"""/v1/translate: translation over HTTP (``clearlm.translate``; this module only translates requests).

- ``GET /v1/translate/engines``: every engine, whether it is available here, and its pairs (``en-es``).
- ``POST /v1/translate``: ``text`` in ``format`` (text, markdown, html, srt, vtt) from ``source`` into
  ``target`` with ``engine`` (auto, apertium, bergamot, llm, hybrid); an optional ``glossary`` ({source
  term: target term}) is put in the model's prompt and checked in every sentence's output (terms not
  kept are listed per sentence); ``quality`` adds a back-translation similarity per sentence and flags
  the doubtful ones. The served model is the LLM; each of its calls is a pipeline turn of its own
  (policy applied, audited; their ids in ``request_ids``), and the request is admitted like a generation.
  With ``stream``: server-sent events, ``translation.progress`` (sentences done and total) after each
  engine batch, then ``translation.done`` (the same object), so a large document (1 MB: ~45 s with
  Apertium here) shows its progress; bodies over ``MAX_BODY_BYTES`` (32 MiB) are 413s, texts over
  5,000,000 characters 400s.

An unsupported pair or engine, a malformed subtitle file (with the line), a bad glossary: 400, with an
OpenAI-style body naming what there is.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from clearlm.server.auth import tenant_of
from clearlm.server.protocol import _Request
from clearlm.server.routes import api_router, state
from clearlm.server.serving import admit, policy_of
from clearlm.server.sse import STREAMED, thread_events
from clearlm.translate import (
    ENGINES,
    FORMATS,
    NEEDS_MODEL,
    Glossary,
    LLMEngine,
    QualityCheck,
    check_pair,
    describe_engines,
    make_engine,
    translate_document,
)
from clearlm.translate.glossary import MAX_TERM_CHARS, MAX_TERMS
from clearlm.translate.translator import MAX_TEXT_CHARS

router = api_router()


class EngineOut(BaseModel):
    name: str
    available: bool
    needs_model: bool
    pairs: list[str]
    pivots: list[str] = []


class EngineList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EngineOut]


Term = Annotated[
    str, Field(max_length=MAX_TERM_CHARS, pattern=r"\S", description="A glossary term (not blank).")
]


class TranslateRequest(_Request):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="What to translate.")
    source: str = Field(max_length=16, description="ISO 639-1 code of the text's language (en).")
    target: str = Field(max_length=16, description="ISO 639-1 code to translate into (es).")
    engine: Literal[ENGINES] = Field("auto", description="auto, apertium, bergamot, llm or hybrid.")  # type: ignore[valid-type]
    format: Literal[FORMATS] = Field("text", description="text, markdown, html, srt or vtt.")  # type: ignore[valid-type]
    glossary: dict[Term, Term] | None = Field(
        None, max_length=MAX_TERMS, description="{source term: target term}, kept and checked."
    )
    quality: bool = Field(False, description="Estimate each sentence's quality by back-translation.")
    stream: bool = Field(
        False,
        description="Server-sent events: translation.progress ({done, total} sentences) after each "
        "engine batch, then translation.done (the translation, as without stream), then [DONE].",
    )


class TermOut(BaseModel):
    source: str
    target: str


class QualityOut(BaseModel):
    back_translation: str
    similarity: float
    flagged: bool


class SentenceOut(BaseModel):
    source: str
    text: str
    missing_terms: list[TermOut]
    quality: QualityOut | None


class TranslationOut(BaseModel):
    object: Literal["translation"] = "translation"
    engine: str = Field(description="The engine that translated (for auto: the one it chose).")
    source: str
    target: str
    format: str
    text: str
    sentences: list[SentenceOut]
    flagged: list[int] = Field(description="Sentences missing a glossary term or flagged by quality.")
    request_ids: list[str] = Field(description="The audit records of the model's turns.")
    seconds: float


@router.get("/translate/engines", response_model=EngineList)
async def list_engines(request: Request):
    """The engines, whether each is available on this server, and the pairs each translates."""
    rows = await anyio.to_thread.run_sync(describe_engines, True)
    return EngineList(data=[EngineOut(**r) for r in rows])


@router.post("/translate", response_model=TranslationOut, responses=STREAMED)
async def translate(body: TranslateRequest, request: Request):
    s = state(request)
    record = request.state.audit_record
    glossary = Glossary(body.glossary) if body.glossary else None
    llm = LLMEngine(
        s.backend,
        policy=policy_of(request, s),
        audit=s.audit,
        tenant=tenant_of(request),
        api_key_id=record.api_key_id,
        glossary=glossary,
    )
    engine = make_engine(body.engine, llm)
    pair = check_pair(engine, body.source, body.target)  # 400 before a slot is taken
    chosen = engine.chosen(pair.source, pair.target) if body.engine == "auto" else engine
    record.parameters = {"engine": chosen.name, "pair": str(pair), "format": body.format}
    if body.engine in NEEDS_MODEL or chosen.name == "llm" or chosen.name.startswith("hybrid"):
        await admit(request, s)

    def work(progress=None):
        done = translate_document(
            engine, body.text, pair.source, pair.target, body.format, glossary, progress
        )
        if body.quality:
            from clearlm.translate import estimate_quality

            back = make_engine(body.engine, llm)
            check = QualityCheck(back, s.embedder())
            sources = [x.source for x in done.sentences]
            texts = [x.text for x in done.sentences]
            for row, q in zip(
                done.sentences,
                estimate_quality(
                    sources, texts, back, pair.source, pair.target, check.embedder, check.flag_below
                ),
                strict=True,
            ):
                row.quality = q
        return done

    def answer(done) -> TranslationOut:
        return _answer(done, chosen.name, pair, list(llm.request_ids), record)

    if body.stream:
        record.parameters["stream"] = True
        return _streamed(work, answer)
    return answer(await anyio.to_thread.run_sync(work))


def _answer(done, engine: str, pair, ids: list[str], record) -> TranslationOut:
    """The response (and the request's audit record's output) for a translated document."""
    record.parameters["request_ids"] = ids
    record.output = {"sentences": len(done.sentences)}
    flagged = [
        i
        for i, x in enumerate(done.sentences)
        if x.missing_terms or (x.quality is not None and x.quality.flagged)
    ]
    return TranslationOut(
        engine=engine,
        source=pair.source,
        target=pair.target,
        format=done.format,
        text=done.text,
        sentences=[SentenceOut(**x.to_dict()) for x in done.sentences],
        flagged=flagged,
        request_ids=ids,
        seconds=round(done.seconds, 4),
    )


def _streamed(work, answer) -> StreamingResponse:
    """Server-sent events (:func:`~clearlm.server.sse.thread_events`): ``translation.progress`` after each
    engine batch (``done`` and ``total`` sentences), then ``translation.done`` with the whole response."""

    def run(emit):
        return work(lambda done, total: emit({"type": "translation.progress", "done": done, "total": total}))

    return thread_events(run, lambda done: {"type": "translation.done", **answer(done).model_dump()})
