"""The pii scanner's allow-list: a shop's order numbers pass (spaCy read "I cannot find order A-99998." as a
LOCATION: bench_support hb-ht01) while an e-mail address beside them, and a place around them, are still
redacted; the sample desk's policy allows its order numbers in both stages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clearlm.errors import InvalidInputError
from clearlm.govern.base import ScanContext
from clearlm.govern.pii import PiiScanner
from clearlm.govern.policy import parse_policy

ORDERS = r"A-\d{5}"
NOT_FOUND = "I cannot find order A-99998. A colleague will look into it with you."
POLICY = Path(__file__).parents[2] / "examples" / "support" / "policy.yaml"


def spans(scanner: PiiScanner, text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in scanner.findings(text, ScanContext())]


def test_without_the_allow_list_the_order_number_is_read_as_a_location():
    assert spans(PiiScanner(), NOT_FOUND) == [("LOCATION", "A-99998")]  # the defect the list answers


def test_an_allowed_order_number_passes_and_an_email_is_still_redacted():
    policy = parse_policy(
        "name: t\nstore_redacted: true\n"
        f"input: [{{scanner: pii, action: redact, allow: ['{ORDERS}']}}]\n"
        f"output: [{{scanner: pii, action: redact, allow: ['{ORDERS}']}}]\n"
    )
    said = "My order is A-10002, write to ada.lovelace@example.com please"
    assert policy.stored(said) == "My order is A-10002, write to <EMAIL_ADDRESS> please"
    assert policy.stored(NOT_FOUND) == NOT_FOUND
    assert spans(PiiScanner(allow=(ORDERS,)), NOT_FOUND) == []


def test_the_allow_list_drops_only_findings_it_matches_whole():
    scanner = PiiScanner(allow=("A-",))  # a pattern matching part of the number allows nothing
    assert spans(scanner, NOT_FOUND) == [("LOCATION", "A-99998")]
    text = "Send order A-10001 to 221B Baker Street"
    assert spans(PiiScanner(allow=(ORDERS,)), text) == [("LOCATION", "221B Baker Street")]


def test_a_bad_allow_pattern_is_refused_with_what_to_fix():
    with pytest.raises(InvalidInputError, match="not a regular expression"):
        PiiScanner(allow=("A-(\\d",))
    with pytest.raises(InvalidInputError, match="not a regular expression"):
        parse_policy("name: t\ninput: [{scanner: pii, allow: ['(']}]\n").build_all()


def test_the_sample_desks_policy_allows_its_order_numbers_in_both_stages():
    spec = yaml.safe_load(POLICY.read_text())
    rules = [r for stage in ("input", "output") for r in spec[stage] if r["scanner"] == "pii"]
    assert len(rules) == 2 and all(r["allow"] == [ORDERS] for r in rules)
