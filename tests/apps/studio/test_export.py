"""Export: Markdown and EPUB 3 with the AI-disclosure statement, and the sidecar naming, per passage, the
model that generated it and whether a person edited it (authorship carried through the versions)."""

from __future__ import annotations

import io
import json
import zipfile
from xml.etree import ElementTree

from clearlm.apps.studio.export import sidecar, to_epub, to_markdown
from clearlm.govern.disclosure import NOTICE

OPF = "{http://www.idpf.org/2007/opf}"


def book(studio, project):
    p, scene = project
    v = studio.versions
    v.add("acme", p.id, scene.id, "Tobin knocked twice.\n\nMara opened the door.", "model-a", "draft")
    v.edit("acme", p.id, scene.id, "Tobin knocked twice.\n\nMara opened the heavy door & <waited>.")
    chapter = studio.projects.add_node("acme", p.id, "chapter", "Calm", _part(studio, p.id))
    mine = studio.projects.add_node("acme", p.id, "scene", "Dawn", chapter.id, ["Mara counts coins"])
    v.edit("acme", p.id, mine.id, "Mara counted the coins at dawn.")
    return studio.book(p.id)


def _part(studio, project_id):
    return studio.projects.outline("acme", project_id)[0].id


def test_passages_carry_who_wrote_them(studio, project):
    b = book(studio, project)
    got = [(p.text[:12], p.status, p.models, p.model_words, p.person_words) for p in b.passages]
    assert got == [
        ("Tobin knocke", "generated", ["model-a"], 3, 0),
        ("Mara opened ", "generated, edited by a person", ["model-a"], 4, 2),
        ("Mara counted", "written by a person", [], 0, 6),
    ]
    assert b.models == ["model-a"]
    statement = b.disclosure()
    assert statement.startswith(NOTICE) and "2 of 3 passages" in statement and "people edited 1" in statement


def test_markdown_and_sidecar(studio, project):
    b = book(studio, project)
    md = to_markdown(b)
    assert md.startswith("# The Keeper\n\n> " + NOTICE)
    assert "## Part One\n\n### Storm\n\nTobin knocked twice.\n\nMara opened the heavy door & <waited>." in md
    assert "### Calm\n\nMara counted the coins at dawn.\n" in md
    data = json.loads(json.dumps(sidecar(b, "keeper.md")))
    assert data["ai_generated"] is True and data["models"] == ["model-a"] and data["file"] == "keeper.md"
    assert [(x["chapter"], x["status"]) for x in data["passages"]] == [
        ("Storm", "generated"), ("Storm", "generated, edited by a person"), ("Calm", "written by a person")
    ]  # fmt: skip
    assert all(len(x["sha256"]) == 64 for x in data["passages"])


def test_epub_is_a_valid_package(studio, project):
    b = book(studio, project)
    z = zipfile.ZipFile(io.BytesIO(to_epub(b)))
    first = z.infolist()[0]
    assert (first.filename, first.compress_type, z.read("mimetype")) == (
        "mimetype",
        zipfile.ZIP_STORED,
        b"application/epub+zip",
    )
    container = ElementTree.fromstring(z.read("META-INF/container.xml"))
    [rootfile] = container.iter("{urn:oasis:names:tc:opendocument:xmlns:container}rootfile")
    opf = ElementTree.fromstring(z.read(rootfile.get("full-path")))
    items = {i.get("id"): i for i in opf.iter(f"{OPF}item")}
    assert items["nav"].get("properties") == "nav"
    for item in items.values():  # every manifest item is in the zip; every XHTML file is well-formed XML
        data = z.read("OEBPS/" + item.get("href"))
        if item.get("media-type") == "application/xhtml+xml":
            ElementTree.fromstring(data)
    spine = [i.get("idref") for i in opf.iter(f"{OPF}itemref")]
    first_page = z.read("OEBPS/" + items[spine[0]].get("href")).decode()
    assert NOTICE in first_page  # the disclosure comes first
    chapter = z.read("OEBPS/chapter-1.xhtml").decode()
    assert "heavy door &amp; &lt;waited&gt;." in chapter and "<h1>Part One</h1>" in chapter
    assert opf.find(f"{OPF}metadata/{{http://purl.org/dc/elements/1.1/}}title").text == "The Keeper"
