"""OCR character accuracy on rendered text, and the time to describe a photo (issue 18's image half).

Each sentence below is rendered with PIL (black on white, one line, 24 px margins) in every font of
``FONTS`` (Debian's fonts-dejavu-core) at every size of ``SIZES`` (pixels), and read back by clearlm's OCR
(``clearlm.media.images_ocr.read_text``: Tesseract 5, LSTM, English). Character accuracy is
``1 - CER``: CER is the character edit distance (Levenshtein) between the text read and the sentence,
over the sentence's length, with runs of whitespace collapsed to one space first (``strict``) or all
whitespace removed (``no_spaces``: Tesseract often splits or joins digit groups, a card number read as
"4111 111111111111"). Also printed: OCR seconds per image, and the full description (labels, OCR,
moderation) of scikit-image's three photos with its seconds (warm: after one run to load the models).

python benchmarks/bench_ocr.py                  # every font and size (9 sentences x 4 fonts x 4 sizes)
python benchmarks/bench_ocr.py --sizes 16,24 --json ocr.json

The speech helper's benchmarks/bench_media.py may import ``run_ocr`` and ``run_describe`` from here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from importlib import metadata
from pathlib import Path

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Invoice 2291 is due on 12 March 2027.",
    "Please call 0161 496 0123 before 5 pm.",
    "Card number: 4111 1111 1111 1111",
    "Take two tablets every eight hours, with water.",
    "Room 4B: keep this door closed at all times!",
    "Total (incl. VAT): 1,234.56 EUR",
    "Mount the shelf 30 cm above the desk; use M6 screws.",
    "Send questions to help@example.org or visit the front desk.",
)
FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")
SIZES = (12, 16, 24, 36)
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png")


def render(text: str, font: str, size: int):
    """``text`` in ``font`` at ``size`` px, black on white, with a margin of 24 px (a PIL RGB image)."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(font, size)
    left, top, right, bottom = face.getbbox(text)
    image = Image.new("RGB", (right - left + 48, bottom - top + 48), "white")
    ImageDraw.Draw(image).text((24 - left, 24 - top), text, fill="black", font=face)
    return image


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions of one character each cost 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def accuracy(read: str, truth: str, spaces: bool = True) -> float:
    """``1 - CER`` of ``read`` against ``truth`` (whitespace collapsed, or removed with ``spaces=False``);
    at most 1, and below 0 when the text read is much longer than the truth."""
    norm = (lambda s: " ".join(s.split())) if spaces else (lambda s: "".join(s.split()))
    r, t = norm(read), norm(truth)
    return 1.0 - edit_distance(r, t) / max(len(t), 1)


def run_ocr(fonts=FONTS, sizes=SIZES, sentences=SENTENCES) -> dict:
    """{(font, size): {"strict", "no_spaces", "seconds"}} averaged over the sentences, plus ``"all"``."""
    from clearlm.media.images_ocr import read_text

    cells, every = {}, []
    for font in fonts:
        for size in sizes:
            rows = []
            for sentence in sentences:
                start = time.perf_counter()
                read = read_text(render(sentence, font, size)).text
                seconds = time.perf_counter() - start
                rows.append((accuracy(read, sentence), accuracy(read, sentence, spaces=False), seconds, read))
            every += rows
            cells[(font, size)] = _mean(rows)
    cells["all"] = _mean(every)
    cells["errors"] = [
        (s, r[3]) for s, r in zip(sentences * (len(fonts) * len(sizes)), every, strict=True) if r[0] < 1
    ]
    return cells


def run_describe(photos=PHOTOS) -> list[dict]:
    """Each photo's top label, its probability, and the warm seconds of a full description."""
    from clearlm.media.images import describe_image

    out = []
    for name in photos:
        path = Path(metadata.distribution("scikit-image").locate_file(f"skimage/data/{name}"))
        describe_image(path)  # load the models (once per process)
        start = time.perf_counter()
        d = describe_image(path)
        took = time.perf_counter() - start
        out.append(
            {
                "photo": name,
                "label": d.labels[0].name,
                "p": d.labels[0].probability,
                "seconds": took,
                **d.seconds,
            }
        )
    return out


def _mean(rows) -> dict:
    return {
        "strict": statistics.mean(r[0] for r in rows),
        "no_spaces": statistics.mean(r[1] for r in rows),
        "seconds": statistics.mean(r[2] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fonts", default=",".join(FONTS))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    fonts, sizes = args.fonts.split(","), [int(s) for s in args.sizes.split(",")]
    cells = run_ocr(fonts, sizes)
    print(f"OCR character accuracy (1 - CER), {len(SENTENCES)} sentences per cell; strict / without spaces")
    print(f"{'font':24s}" + "".join(f"{f'{s} px':>16s}" for s in sizes))
    for font in fonts:
        row = "".join(
            f"{cells[(font, s)]['strict']:>8.1%} /{cells[(font, s)]['no_spaces']:>6.1%}" for s in sizes
        )
        print(f"{font:24s}{row}")
    a = cells["all"]
    print(
        f"all: {a['strict']:.1%} strict, {a['no_spaces']:.1%} without spaces, {a['seconds']:.2f} s per image"
    )
    for truth, read in cells["errors"][:12]:
        print(f"  {truth!r} -> {read!r}")
    described = run_describe()
    print("description of scikit-image's photos (warm): top label, seconds (classify / ocr / moderation)")
    for d in described:
        print(
            f"  {d['photo']:14s} {d['label']} ({d['p']:.0%}), {d['seconds']:.2f} s "
            f"({d['classify']:.2f} / {d['ocr']:.2f} / {d['moderation']:.2f})"
        )
    if args.json:
        flat = {f"{k[0]}@{k[1]}" if isinstance(k, tuple) else k: v for k, v in cells.items()}
        args.json.write_text(json.dumps({"ocr": flat, "describe": described}, indent=2))


if __name__ == "__main__":
    main()
