"""Reading each file type into text and heading structure; bad files raise errors that name them."""

from __future__ import annotations

import hashlib

import pytest
from kb_files import MARKDOWN, PDF_PAGES, TEXT, make_pdf, write_corpus

from clearlm.knowledge.documents import read_document
from clearlm.knowledge.errors import (
    BinaryDocumentError,
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    UnsupportedDocumentError,
)


def section_texts(doc):
    return {s.heading_path: doc.text[s.start : s.end].strip() for s in doc.sections}


def test_markdown_keeps_the_file_text_and_its_heading_tree(tmp_path):
    path = write_corpus(tmp_path)["md"]
    doc = read_document(path)
    assert doc.kind == "md" and doc.title == "Gardening Handbook"
    assert doc.text == MARKDOWN  # offsets point into the file itself
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    sections = section_texts(doc)
    assert list(sections) == [
        ("Gardening Handbook",),
        ("Gardening Handbook", "Watering"),
        ("Gardening Handbook", "Watering", "Drip irrigation"),
        ("Gardening Handbook", "Compost"),
    ]  # the "# not a heading" inside the code block is not a heading
    assert sections[("Gardening Handbook", "Watering")].startswith("Tomatoes need deep watering")
    assert "# not a heading" in sections[("Gardening Handbook", "Watering")]
    assert sections[("Gardening Handbook", "Compost")].endswith("wrung sponge.")
    starts = [s.start for s in doc.sections]
    assert starts == sorted(starts) and all(
        a.end <= b.start for a, b in zip(doc.sections, doc.sections[1:], strict=False)
    )


def test_html_drops_scripts_and_navigation_and_keeps_headings(tmp_path):
    doc = read_document(write_corpus(tmp_path)["html"])
    assert doc.kind == "html" and doc.title == "Bicycle Repair Guide"
    for noise in ("console.log", "color: red", "Next chapter", "Copyright", "\u00b6"):
        assert noise not in doc.text
    sections = section_texts(doc)
    assert sections[("Bicycle Repair Guide",)] == "This guide covers common repairs."
    assert sections[("Bicycle Repair Guide", "Fixing a flat tyre")].startswith(
        "Remove the wheel, lever the tyre"
    )
    brakes = sections[("Bicycle Repair Guide", "Adjusting the brakes")]
    assert "barrel adjuster:\n  turn anticlockwise" in brakes  # <pre> keeps its lines
    assert "Squeeze the brake lever: the pads" in brakes  # other white space collapsed


def test_text_is_one_section_titled_by_the_file_name(tmp_path):
    doc = read_document(write_corpus(tmp_path)["txt"])
    assert (doc.kind, doc.title, doc.text) == ("txt", "volcanoes", TEXT)
    assert [(s.heading_path, s.start, s.end) for s in doc.sections] == [((), 0, len(TEXT))]


FRENCH = (
    "La cr\u00e8me br\u00fbl\u00e9e est un dessert fran\u00e7ais compos\u00e9 d'une cr\u00e8me \u00e0 base de "
    "jaunes d'oeufs, de sucre et de lait. Elle est recouverte d'une fine couche de sucre caram\u00e9lis\u00e9, que "
    "l'on brise \u00e0 la cuill\u00e8re avant de d\u00e9guster. On la pr\u00e9pare la veille, et on la sert "
    "fra\u00eeche."
)


def test_text_in_another_encoding_and_windows_newlines(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes((FRENCH + "\r\nDeux fois.\r\n").encode("latin-1"))
    assert read_document(path).text == FRENCH + "\nDeux fois.\n"  # detected by charset-normalizer


def test_pdf_text_and_outline_become_sections(tmp_path):
    doc = read_document(write_corpus(tmp_path)["pdf"])
    assert doc.kind == "pdf" and doc.title == "Lighthouse Manual"
    sections = section_texts(doc)
    assert sections[("Lighthouse Keeping",)] == "Lighthouses warn ships away from rocks at night."
    assert sections[("Lamps and Lenses",)] == "A Fresnel lens focuses the lamp into a beam seen for miles."
    # the heading itself sits just before its section, at the place its title appears
    first = doc.sections[0]
    assert doc.text[: first.start].strip() == "Lighthouse Keeping"


def test_pdf_without_outline_has_one_section(tmp_path):
    path = tmp_path / "plain.pdf"
    path.write_bytes(make_pdf(PDF_PAGES))
    doc = read_document(path)
    assert doc.title == "plain" and len(doc.sections) == 1
    assert "Fresnel lens" in doc.text and doc.sections[0].heading_path == ()


@pytest.mark.parametrize(
    ("name", "data", "error", "message"),
    [
        ("empty.txt", b"", EmptyDocumentError, "the file is empty"),
        ("blank.md", b"  \n\n\t\n", EmptyDocumentError, "the file is empty"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", BinaryDocumentError, "binary"),
        ("page.html", b"<html>\x00\x01\x02</html>", BinaryDocumentError, "binary"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", CorruptDocumentError, "cannot be read"),
        ("notes.docx", b"PK\x03\x04 a zip file", UnsupportedDocumentError, "unsupported file type '.docx'"),
        ("tags.html", b"<html><body><script>x()</script></body></html>", EmptyDocumentError, "no text"),
    ],
)
def test_bad_files_raise_an_error_naming_the_file(tmp_path, name, data, error, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error) as info:
        read_document(path)
    assert str(path) in str(info.value) and message in str(info.value)
    assert info.value.path == str(path)


def test_encrypted_and_scanned_pdfs(tmp_path):
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(make_pdf(PDF_PAGES, password="s3cret"))
    with pytest.raises(EncryptedDocumentError, match="password-protected"):
        read_document(locked)
    blank = tmp_path / "scan.pdf"
    blank.write_bytes(make_pdf([""]))
    with pytest.raises(EmptyDocumentError, match="no text layer"):
        read_document(blank)
