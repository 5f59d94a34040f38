"""Presidio recognisers of ours for identity numbers, and an IP recogniser that skips version strings.

Every number is found by a pattern, checked by python-stdnum where its format has a check (Aadhaar's
Verhoeff digit, the Chinese resident ID's ISO 7064 digit, PESEL's and My Number's weighted sums, the DNI
letter) or against the SSA's unissued SSN ranges, and scored by its cue: a word such as "passport" or
"Aadhaar" ending at most ``CUE_BEFORE`` characters before it or starting ``CUE_AFTER`` after. Shapes that
any long number can take (a passport number, 9 to 12 plain digits) count only with their cue; distinctive
ones (123-45-6789, a National Insurance number, a Chinese resident ID, a DNI) count without one, at a
lower score.

Types: ``US_SSN``, ``PASSPORT`` (any country: 6 to 9 capitals and digits, at least 3 of them digits, or
Russia's "75 4019283"), ``NATIONAL_ID`` (UK NINO, Indian Aadhaar, Chinese resident ID, Nigerian NIN,
Polish PESEL, Japanese My Number, Spanish DNI and NIE).

The Nigerian NIN is 11 digits with no published check digit (NIMC documents none; Presidio's
``NgNinRecognizer`` assumes Verhoeff), so it counts only next to "NIN" or "national identification number".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import IpRecognizer

CUE_BEFORE = 48  # characters before a number in which its cue word may end
CUE_AFTER = 40  # characters after it in which its cue word may start


@dataclass(frozen=True)
class IdFormat:
    """One identity-number format: ``pattern`` (a regex), ``check`` (True when the matched text is valid;
    None = any match), ``cue`` (a case-insensitive regex), ``score`` (without the cue; None = the cue is
    required) and ``cue_score``."""

    name: str
    pattern: str
    check: Callable[[str], bool] | None
    cue: str
    score: float | None
    cue_score: float = 0.85


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _ssn(text: str) -> bool:
    """The SSA never issues area 000, 666 or 900-999 (900-999 are ITINs), group 00 or serial 0000. Unlike
    python-stdnum, published sample numbers (078-05-1120, 219-09-9999) still count: pasted into a prompt,
    they are better redacted than let through."""
    digits = _digits(text)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        len(digits) == 9
        and len(set(digits)) > 1
        and area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
    )


def _aadhaar(text: str) -> bool:
    from stdnum.in_ import aadhaar

    return aadhaar.is_valid(_digits(text))


def _my_number(text: str) -> bool:
    from stdnum.jp import in_

    return in_.is_valid(_digits(text))


def _ric(text: str) -> bool:
    from stdnum.cn import ric

    return ric.is_valid(text.upper())


def _pesel(text: str) -> bool:
    from stdnum.pl import pesel

    return pesel.is_valid(text)


def _dni(text: str) -> bool:
    from stdnum.es import dni, nie

    return dni.is_valid(text) or nie.is_valid(text)


def _not_one_digit(text: str) -> bool:
    return len(set(_digits(text))) > 1


_SSN_CUE = r"\bssn|\bss ?#|\bss no\b|social security|\bsocial\b"
SSN_FORMATS = (
    # 123-45-6789 and 123 45 6789 (the same separator twice); Presidio's "medium" 0.5 without a cue
    IdFormat("ssn grouped", r"\b\d{3}([- .])\d{2}\1\d{4}\b", _ssn, _SSN_CUE, 0.5),
    IdFormat("ssn digits", r"\b\d{9}\b", _ssn, _SSN_CUE, None),
)
PASSPORT_FORMATS = (
    IdFormat(
        "passport",
        r"\b(?=[A-Z0-9]{6,9}\b)(?:[A-Z]*\d){3}[A-Z0-9]*\b|\b\d{2} \d{7}\b",
        None,
        r"passports?\b|passeport|pasaporte|passaporto|reisepass|paspoort|paszport|паспорт|护照|旅券",
        None,
    ),
)
NATIONAL_ID_FORMATS = (
    IdFormat(
        "uk nino",
        # HMRC: no D, F, I, Q, U, V; no O second; never BG, GB, KN, NK, NT, TN, ZZ
        r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
        None,
        r"national insurance|\bni\b|\bnino\b",
        0.6,
    ),
    IdFormat(
        "aadhaar",
        r"\b\d{4}([ -]?)\d{4}\1\d{4}\b",
        _aadhaar,
        r"aadhaa?r|\buidai\b|आधार",
        None,
    ),
    IdFormat(
        "my number",
        r"\b\d{4}([ -]?)\d{4}\1\d{4}\b",
        _my_number,
        r"my ?number|individual number|マイナンバー|個人番号|kojin bang",
        None,
    ),
    IdFormat(
        "china resident id",
        r"\b\d{17}[\dXx]\b",
        _ric,
        r"resident|identity|\bid\b|身份证",
        0.7,
        0.9,
    ),
    IdFormat("pesel", r"\b\d{11}\b", _pesel, r"\bpesel\b", None),
    IdFormat(
        "nigeria nin",
        r"\b\d{11}\b",
        _not_one_digit,
        r"\bnin\b|national identi(?:fication|ty) number|\bnimc\b",
        None,
    ),
    IdFormat(
        "spain dni nie",
        r"\b[XYZ]?\d{7,8}-?[A-Z]\b",
        _dni,
        r"\bdni\b|\bnie\b|\bnif\b|documento nacional",
        0.6,
        0.9,
    ),
)


class IdNumberRecognizer(PatternRecognizer):
    """A Presidio ``PatternRecognizer`` for one entity type over several :class:`IdFormat` s: each match is
    checked, then scored by whether its cue is near (see the module's docstring)."""

    def __init__(self, entity: str, formats: tuple[IdFormat, ...], name: str):
        self.formats = formats
        self._compiled = [(f, re.compile(f.pattern), re.compile(f.cue, re.IGNORECASE)) for f in formats]
        super().__init__(
            supported_entity=entity,
            name=name,
            patterns=[Pattern(f.name, f.pattern, f.cue_score) for f in formats],
        )

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        out = []
        for fmt, pattern, cue in self._compiled:
            for m in pattern.finditer(text):
                if fmt.check is not None and not fmt.check(m.group()):
                    continue
                near = (
                    text[max(0, m.start() - CUE_BEFORE) : m.start()]
                    + " | "
                    + text[m.end() : m.end() + CUE_AFTER]
                )
                score = fmt.cue_score if cue.search(near) else fmt.score
                if score is not None:
                    out.append(self._result(m.start(), m.end(), score, fmt.name))
        return out

    def _result(self, start: int, end: int, score: float, pattern_name: str) -> RecognizerResult:
        return RecognizerResult(
            self.supported_entities[0],
            start,
            end,
            score,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                # our cue already scored it: Presidio's context enhancer must not raise it again
                RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True,
            },
        )


# "version 10.2.3.4", "v 1.2.3.4", "release 4.1.0.12", "build 6.0.2.1", "upgrade the gateway to 10.2.3.4",
# "section 2.3.1.4": four dotted numbers after these words are a version or a section, not an address.
VERSION_CUE = re.compile(
    r"(?:\b(?:v|ver|version|versions|release|rel|build|firmware|patch|hotfix|update|changelog for|"
    r"section|chapter|clause|(?:up|down)grade(?:\s+\S+){0,3}\s+to(?:\s+version)?)\.?:?\s*|\bv)$",
    re.IGNORECASE,
)


class VersionAwareIpRecognizer(IpRecognizer):
    """Presidio's ``IpRecognizer``, minus dotted quads that follow "version", "v", "release", "build",
    "firmware", "patch", "section" or "upgrade ... to" (see ``VERSION_CUE``)."""

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [
            r
            for r in results
            if ":" in text[r.start : r.end] or not VERSION_CUE.search(text[max(0, r.start - 40) : r.start])
        ]


def identity_recognizers() -> list[PatternRecognizer]:
    """The recognisers this module adds: US_SSN, PASSPORT, NATIONAL_ID, and the version-aware IP one."""
    return [
        IdNumberRecognizer("US_SSN", SSN_FORMATS, "UsSsnChecked"),
        IdNumberRecognizer("PASSPORT", PASSPORT_FORMATS, "PassportNumber"),
        IdNumberRecognizer("NATIONAL_ID", NATIONAL_ID_FORMATS, "NationalId"),
        VersionAwareIpRecognizer(),
    ]


def is_document_word(text: str) -> bool:
    """Whether ``text`` is just the name of an identity document or number ("Aadhaar", "Reisepass",
    "PESEL"): the language model sometimes takes one for a person or a place."""
    return any(
        re.fullmatch(f"(?:{fmt.cue})", text.strip(), re.IGNORECASE)
        for fmt in (*SSN_FORMATS, *PASSPORT_FORMATS, *NATIONAL_ID_FORMATS)
    )


# Presidio's own recognisers that ours replace (removed from the registry by name).
REPLACED = ("UsSsnRecognizer", "IpRecognizer")
