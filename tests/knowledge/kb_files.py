"""Small real documents for the knowledge-base tests: Markdown, HTML, text, and PDFs written with pypdf."""

from __future__ import annotations

import io
from pathlib import Path

MARKDOWN = """# Gardening Handbook

Welcome to the handbook for the community garden.

## Watering

Tomatoes need deep watering twice a week. Water early in the morning so the leaves dry before night.

```
# not a heading: a comment in a code block
water --zone tomatoes
```

### Drip irrigation

Drip lines save water by delivering it straight to the roots.

## Compost

Compost turns kitchen scraps into soil. Turn the heap every fortnight and keep it as damp as a wrung sponge.
"""

HTML = """<!DOCTYPE html>
<html><head><title>Bicycle Repair Guide</title><style>body { color: red }</style>
<script>console.log("not text")</script></head>
<body>
<nav role="navigation">Home | Index | Next chapter</nav>
<h1>Bicycle Repair Guide<a class="headerlink" href="#top">\u00b6</a></h1>
<p>This guide covers common repairs.</p>
<h2>Fixing a flat tyre</h2>
<p>Remove the wheel, lever the tyre off the rim and find the puncture in the inner tube.
Patch it, or fit a new tube.</p>
<h2>Adjusting the brakes</h2>
<p>Squeeze the brake lever: the pads should grip the rim before the lever touches the handlebar.</p>
<pre>barrel adjuster:
  turn anticlockwise to tighten</pre>
<footer role="contentinfo">Copyright the repair cafe</footer>
</body></html>
"""

TEXT = """Volcanoes form where magma rises through the crust.

Basalt lava flows are runny and travel far; rhyolite lava is thick and explosive.
"""


def make_pdf(
    pages: list[str], outline: list[tuple[str, int]] = (), title: str = "", password: str = ""
) -> bytes:
    """A real PDF: one page per string (its lines drawn in Helvetica), outline items (title, page index),
    the document title in its metadata, and encryption with ``password`` if one is given."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(612, 792)
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
        for line in text.split("\n"):
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    for label, index in outline:
        writer.add_outline_item(title=label, page_number=index)
    if title:
        writer.add_metadata({"/Title": title})
    if password:
        writer.encrypt(password)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


PDF_PAGES = [
    "Lighthouse Keeping\nLighthouses warn ships away from rocks at night.",
    "Lamps and Lenses\nA Fresnel lens focuses the lamp into a beam seen for miles.",
]


def write_corpus(folder: Path) -> dict[str, Path]:
    """One file of each kind in ``folder`` (a PDF with an outline among them)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "md": folder / "garden.md",
        "html": folder / "bikes.html",
        "txt": folder / "volcanoes.txt",
        "pdf": folder / "lighthouse.pdf",
    }
    files["md"].write_text(MARKDOWN)
    files["html"].write_text(HTML)
    files["txt"].write_text(TEXT)
    files["pdf"].write_bytes(
        make_pdf(PDF_PAGES, [("Lighthouse Keeping", 0), ("Lamps and Lenses", 1)], title="Lighthouse Manual")
    )
    return files
