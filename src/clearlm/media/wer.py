"""Word error rate (WER) as speech recognition is scored: both texts normalised the way Whisper's
``EnglishTextNormalizer`` does (Radford et al. 2022, appendix C: lower case, bracketed and filler words
dropped, contractions and titles spelled out ("mr" -> "mister"), spelled numbers as digits, punctuation
removed), then jiwer's edit distance over words (substitutions + deletions + insertions) / reference words.
"""

from __future__ import annotations

import re

_TITLES = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "prof": "professor", "st": "saint",
    "jr": "junior", "sr": "senior", "capt": "captain", "gen": "general", "sgt": "sergeant",
}  # fmt: skip
_CONTRACTIONS = [
    (r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"), (r"\blet's\b", "let us"), (r"\bain't\b", "aint"),
    (r"n't\b", " not"), (r"'re\b", " are"), (r"'ll\b", " will"), (r"'ve\b", " have"), (r"'m\b", " am"),
    (r"'d\b", " would"), (r"\bit's\b", "it is"), (r"\bthat's\b", "that is"), (r"\bthere's\b", "there is"),
    (r"\bwhat's\b", "what is"), (r"\bhe's\b", "he is"), (r"\bshe's\b", "she is"),
]  # fmt: skip
_FILLERS = {"hmm", "mm", "mhm", "mmm", "uh", "um", "ah", "eh", "er", "hm", "oh"}
_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]  # fmt: skip
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SYMBOLS = {"%": " percent ", "*": " star ", "#": " pound ", "&": " and ", "+": " plus ", "@": " at "}
_BRITISH = {"colour": "color", "favourite": "favorite", "centre": "center", "cancelled": "canceled",
            "organise": "organize", "realise": "realize", "behaviour": "behavior", "labour": "labor"}  # fmt: skip


def normalize_english(text: str) -> str:
    """``text`` normalised for scoring (Whisper's English normaliser, in its main rules)."""
    s = text.lower()
    s = re.sub(r"[<\[][^>\]]*[>\]]", " ", s)  # [music], <noise>
    s = re.sub(r"\(([^)]+?)\)", " ", s)
    s = s.replace("’", "'")
    for pattern, repl in _CONTRACTIONS:
        s = re.sub(pattern, repl, s)
    for symbol, word in _SYMBOLS.items():
        s = s.replace(symbol, word)
    s = re.sub(r"(\d),(\d)", r"\1\2", s)  # 1,000 -> 1000
    s = re.sub(r"(\d)-(\d)", r"\1 \2", s)  # 555-0187 -> 555 0187
    s = re.sub(r"[^\w\s']", " ", s)
    s = s.replace("'", " ")
    words = []
    for w in s.split():
        w = _TITLES.get(w, w)
        w = _BRITISH.get(w, w)
        if w not in _FILLERS:
            words.append(w)
    return " ".join(_numbers(words))


def _numbers(words: list[str]) -> list[str]:
    """Spelled numbers under 100 as digits ("twenty one" -> "21", "five" -> "5")."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _TENS:
            value = _TENS[w]
            if i + 1 < len(words) and words[i + 1] in _UNITS[1:10]:
                value += _UNITS.index(words[i + 1])
                i += 1
            out.append(str(value))
        elif w in _UNITS:
            out.append(str(_UNITS.index(w)))
        else:
            out.append(w)
        i += 1
    return out


def word_errors(references: list[str], hypotheses: list[str]) -> tuple[int, int]:
    """(word errors, reference words) over the pairs, after :func:`normalize_english` (jiwer's alignment)."""
    import jiwer

    refs = [normalize_english(r) for r in references]
    hyps = [normalize_english(h) for h in hypotheses]
    kept = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    if not kept:
        return 0, 0
    out = jiwer.process_words([r for r, _ in kept], [h for _, h in kept])
    errors = out.substitutions + out.deletions + out.insertions
    return errors, sum(len(r.split()) for r, _ in kept)


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate in [0, inf): total word errors / total reference words (0 with none)."""
    errors, words = word_errors(references, hypotheses)
    return errors / words if words else 0.0
