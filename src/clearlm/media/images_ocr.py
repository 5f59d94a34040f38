"""Text in an image: Tesseract OCR (Debian's ``tesseract-ocr`` + ``tesseract-ocr-eng``, LSTM engine), run as
a subprocess with the image on its standard input and its TSV report on its standard output.

Tesseract reads every image, photos included, and on a photo it finds "words" in texture. So words are
kept only at a confidence of ``MIN_WORD_CONFIDENCE`` (Tesseract's 0-100 scale) or more, and a line only if
one of its kept words has two letters or digits; what is left is joined line by line, blocks separated by a
blank line.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from dataclasses import dataclass

from PIL import Image

from clearlm.errors import BackendUnavailableError, InvalidInputError

MIN_WORD_CONFIDENCE = 60.0
MIN_OCR_SIDE = 500  # a smaller image is scaled up (2x, 3x ...) first: tiny text is read better larger
TIMEOUT_S = 120.0


class OcrUnavailableError(BackendUnavailableError):
    """Tesseract is not installed on the server (the operator's problem, not the caller's)."""

    status_code = 503
    error_type = "server_error"
    code = "ocr_unavailable"


@dataclass(frozen=True, slots=True)
class OcrText:
    """What Tesseract read: ``text`` (lines joined by newlines; "" when nothing was read), ``confidence``
    (the kept words' mean, 0-100; None when none was kept), ``words`` (how many were kept)."""

    text: str
    confidence: float | None
    words: int

    def to_dict(self) -> dict:
        return {"text": self.text, "confidence": self.confidence, "words": self.words}


def tesseract_binary() -> str:
    """The ``tesseract`` executable's path.

    Raises:
        OcrUnavailableError: not installed (the message names the Debian packages).
    """
    path = shutil.which("tesseract")
    if path is None:
        raise OcrUnavailableError(
            "OCR needs Tesseract: apt-get install tesseract-ocr tesseract-ocr-eng (`make vision-deps`)"
        )
    return path


def read_text(image: Image.Image, language: str = "eng", psm: int = 3) -> OcrText:
    """OCR of ``image`` (any PIL mode): Tesseract with language ``language`` and page segmentation mode
    ``psm`` (3: automatic; 6: one uniform block; see ``tesseract --help-psm``).

    Raises:
        OcrUnavailableError: Tesseract is missing, or the language's data is not installed.
        InvalidInputError: Tesseract failed on this image or ran past ``TIMEOUT_S`` seconds.
    """
    gray = image.convert("L")
    if max(gray.size) < MIN_OCR_SIDE:
        scale = -(-MIN_OCR_SIDE // max(gray.size))
        gray = gray.resize((gray.width * scale, gray.height * scale), Image.Resampling.LANCZOS)
    png = io.BytesIO()
    gray.save(png, format="PNG")
    command = [tesseract_binary(), "stdin", "stdout", "-l", language, "--psm", str(psm), "tsv"]
    try:
        done = subprocess.run(command, input=png.getvalue(), capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise InvalidInputError(
            f"OCR took longer than {TIMEOUT_S:.0f} s on this image: send a smaller or simpler image"
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {done.returncode}"
        if "Failed loading language" in " ".join(message):
            raise OcrUnavailableError(
                f"Tesseract has no data for language {language!r}: apt-get install tesseract-ocr-{language}"
            )
        raise InvalidInputError(f"OCR failed on this image ({detail})")
    return parse_tsv(done.stdout.decode("utf-8", "replace"))


def parse_tsv(tsv: str) -> OcrText:
    """The kept text of Tesseract's TSV report (columns level ... conf text; level 5 rows are words)."""
    lines: dict[tuple[int, int, int], list[tuple[str, float]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        conf = float(row["conf"])
        if conf < MIN_WORD_CONFIDENCE:
            continue
        key = (int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
        lines.setdefault(key, []).append((row["text"].strip(), conf))
    out, kept, last_block = [], [], None
    for (block, _, _), words in sorted(lines.items()):
        if not any(sum(ch.isalnum() for ch in w) >= 2 for w, _ in words):
            continue
        if last_block is not None and block != last_block:
            out.append("")
        out.append(" ".join(w for w, _ in words))
        kept += [c for _, c in words]
        last_block = block
    confidence = round(sum(kept) / len(kept), 1) if kept else None
    return OcrText("\n".join(out), confidence, len(kept))
