"""The customer's language (issue 15, "Multilingual"): detected by the policy's language scanner and
kept on the customer (see ``apps.support.translation``'s description for the measured confidences).
Re-exported by :mod:`clearlm.apps.support.translation`."""

from __future__ import annotations

from clearlm.apps.support.customers import Customer, Customers

MIN_CONFIDENCE = 0.9  # lingua's confidence (0-1) for a detection to count


def translatable_pattern() -> str:
    """A regular expression (JSON Schema's dialect) matching exactly the ISO 639-1 codes of lingua's
    languages, lower or upper case: what an API schema declares, so that it promises no code the
    translation refuses."""
    from lingua import Language

    codes = sorted(language.iso_code_639_1.name.lower() for language in Language.all())
    return "^(" + "|".join(f"{c}|{c.upper()}" for c in codes) + ")$"


def detected(text: str) -> tuple[str, float] | None:
    """``(ISO 639-1 code, confidence 0-1)`` of ``text``'s most likely language by the policy's language
    scanner's detector; None for a text under 20 characters or one lingua cannot place."""
    from clearlm.govern.base import ScanContext
    from clearlm.govern.rules import LanguageScanner

    found = LanguageScanner(allowed=()).findings(text or "", ScanContext())
    if not found:
        return None
    return found[0].type.removeprefix("language_"), found[0].score


def detect_language(text: str, min_confidence: float = MIN_CONFIDENCE) -> str | None:
    """``text``'s language (ISO 639-1, e.g. ``es``), or None when unsure: under 20 characters, or a
    confidence under ``min_confidence`` (see the module's description for measured values)."""
    found = detected(text)
    return found[0] if found is not None and found[1] >= min_confidence else None


def keep_language(customers: Customers, customer: Customer, text: str) -> Customer:
    """The customer after their message ``text``: with ``language`` updated (stored) when ``text`` is
    confidently in another language (:func:`detect_language`), else as given."""
    code = detect_language(text)
    if code is None or code == customer.language:
        return customer
    return customers.set_language(customer.tenant, customer.id, code)
