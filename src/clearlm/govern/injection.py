"""Prompt-injection checks: patterns for the known attack families, hidden Unicode, encoded payloads, and
similarity (all-MiniLM-L6-v2 embeddings) to a stored set of known attacks (``data/known_attacks.txt``).

Families follow the OWASP LLM01 taxonomy and Greshake et al. 2023 (indirect injection).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import re
import threading
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from clearlm.govern.base import Finding, ScanContext, SpanScanner

_I = re.IGNORECASE
PATTERNS: dict[str, list[str]] = {
    "instruction_override": [
        r"\b(ignore|disregard|forget|override|bypass|skip)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the|system|initial|original)\b[^.\n]{0,30}\b(instructions?|rules?|prompts?|guidelines|directives?|constraints|polic(y|ies)|programming)",
        r"\b(new|updated|real|actual)\s+(instructions?|rules|system prompt)\s*(:|are|is)",
        r"\bfrom now on\b[^.\n]{0,40}\b(you (will|must|are)|ignore|respond|answer)",
        r"\b(ignor(e|ez)|oublie[sz]?|vergiss|ignoriere|olvida|ignora)\b[^.\n]{0,40}\b(instructions|anweisungen|instrucciones|consignes|regeln|reglas|vorherigen|précédentes|anteriores)",
    ],
    "role_play": [
        r"\b(you are|you're|act as|pretend (to be|you are)|roleplay as|play the role of|from now on you are)\b[^.\n]{0,60}\b(DAN|jailbr(oken|eak)|unrestricted|unfiltered|uncensored|no (rules|limits|restrictions|filters|guidelines)|without (any )?(rules|limits|restrictions|filters|ethics|guidelines)|evil|developer mode)",
        r"\b(DAN|do anything now|developer mode|god mode|jailbreak mode)\b",
        r"\bstay in character\b",
    ],
    "system_prompt_extraction": [
        r"\b(reveal|show|print|repeat|output|display|tell me|give me|leak|dump|what (is|are|was))\b[^.\n]{0,40}\b(your|the) (system|initial|original|hidden|secret)? ?(prompt|instructions|message|rules|configuration)",
        r"\brepeat (everything|all|the (text|words)) (above|before)",
        r"\b(révèle|zeige|muestra|revela)\b[^.\n]{0,40}\b(prompt|instructions|anweisungen|instrucciones)",
    ],
    "delimiter": [
        r"<\|(im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id)\|>",
        r"(^|\n)\s*(#{2,}|={3,}|-{3,})\s*(system|assistant|instructions?|end of (prompt|input|user input))\b",
        r"\[/?(INST|SYS)\]|<</?SYS>>|</?s>",
        r"\b(end of (prompt|input|user input|conversation)|begin(ning)? of (new |system )?(prompt|instructions))\b",
        r"(^|\n)\s*(system|assistant)\s*:\s*\S",
    ],
    "encoding": [
        r"\b(decode|decipher|translate|convert)\b[^.\n]{0,40}\b(base64|rot13|rot-13|hex(adecimal)?|binary|morse|caesar)\b[^.\n]{0,60}\b(follow|execute|obey|do|run|perform|comply)",
        r"\b(base64|rot13|hex)\b[^.\n]{0,30}\b(instructions?|command|payload)\b",
    ],
}
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")
BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}\s?){16,}\b")

_embed_lock = threading.Lock()


def known_attacks() -> list[str]:
    text = resources.files("clearlm.govern").joinpath("data/known_attacks.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@dataclass
class InjectionScanner(SpanScanner):
    """Args: embedder (a ``clearlm.models.embeddings.Embedder``, or None to skip the similarity check);
    similarity_floor: cosine similarity that maps to score 0; similarity_ceiling: to score 1."""

    embedder: object | None = None
    similarity_floor: float = 0.55
    similarity_ceiling: float = 0.8
    name: str = field(default="prompt_injection", init=False)
    _attacks: np.ndarray | None = field(default=None, init=False, repr=False)

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        found = self._patterns(text)
        hidden = [m for m in INVISIBLE.finditer(text)]
        if hidden:
            found.append(Finding("invisible_unicode", hidden[0].start(), hidden[-1].end(), 0.95))
            visible = INVISIBLE.sub("", text)
            revealed = "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)
            found += [Finding(f.type, 0, 0, f.score) for f in self._patterns(visible + "\n" + revealed)]
        for decoded in _decoded_payloads(text):
            found += [Finding("encoding", 0, 0, max(f.score, 0.9)) for f in self._patterns(decoded)]
        if self.embedder is not None and text.strip():
            score = self._similarity(text)
            if score > 0:
                found.append(Finding("known_attack_similarity", 0, 0, score))
        return found

    def _patterns(self, text: str) -> list[Finding]:
        out = []
        for family, patterns in PATTERNS.items():
            for p in patterns:
                m = re.search(p, text, _I)
                if m:
                    out.append(Finding(family, m.start(), m.end(), 0.9))
                    break
        return out

    def _similarity(self, text: str) -> float:
        with _embed_lock:
            if self._attacks is None:
                self._attacks = self.embedder.encode(known_attacks())
        sentences = [s for s in re.split(r"(?<=[.!?\n])\s+", text) if s.strip()][:32] or [text]
        v = self.embedder.encode([text, *sentences] if len(sentences) > 1 else [text])
        cos = float((v @ self._attacks.T).max())
        return float(
            np.clip((cos - self.similarity_floor) / (self.similarity_ceiling - self.similarity_floor), 0, 1)
        )


def _decoded_payloads(text: str) -> list[str]:
    """Plausible hidden payloads: base64 and hex blobs decoded to text, and the ROT13 of the whole text."""
    out = []
    for m in BASE64.finditer(text):
        with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
            out.append(base64.b64decode(m.group(0) + "=" * (-len(m.group(0)) % 4)).decode("utf-8"))
    for m in HEX.finditer(text):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            out.append(bytes.fromhex(m.group(0).replace(" ", "")).decode("utf-8"))
    if re.search(r"\brot-?13\b", text, _I):
        out.append(codecs.decode(text, "rot13"))
    return out
