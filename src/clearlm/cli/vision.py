"""``clearlm describe IMAGE`` and ``clearlm video FILE``: thin shells over ``clearlm.media.images`` and
``clearlm.media.video``. Every text they print (OCR text, descriptions, captions, the summary) has passed the
policy given with ``--policy`` and is recorded in the audit log."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.markup import escape

from clearlm.cli.common import DB, console, err_console, progress_bar
from clearlm.cli.generate import BACKEND, MODEL
from clearlm.cli.govern import POLICY
from clearlm.paths import write_text_atomic


def describe(
    image: Path = typer.Argument(..., help="an image file: PNG, JPEG, GIF, WebP, BMP or TIFF"),
    as_json: bool = typer.Option(False, "--json", help="print the whole result as JSON"),
    labels: int = typer.Option(5, "--labels", min=1, max=20, help="ImageNet classes to report"),
    ocr: bool = typer.Option(True, "--ocr/--no-ocr", help="read the text in the image (Tesseract)"),
    policy: Path = POLICY,
    db: str = DB,
) -> None:
    """Describe an image: its likeliest ImageNet classes (EfficientNet-Lite0), the text in it (Tesseract
    OCR) and a moderation score (Open-NSFW). The description passes the policy and is recorded in the audit
    log (endpoint cli:describe)."""
    from clearlm.cli.generate import _audit_log, _policy
    from clearlm.media.images import describe_image
    from clearlm.pipeline import screen_text
    from clearlm.store import AuditRecord

    gov = _policy(policy)
    with err_console.status(f"describing {escape(image.name)} ..."):
        d = describe_image(image, labels=labels, ocr=ocr)
    record = AuditRecord(
        request_id=f"cli-{uuid.uuid4().hex[:24]}", created_at=datetime.now(UTC), endpoint="cli:describe"
    )
    record.model = "efficientnet-lite0+tesseract+open-nsfw"
    record.parameters = {"file": image.name, "sha256": d.sha256, "bytes": d.bytes}
    screened = screen_text(d.to_text(), record, _audit_log(db), gov)
    if as_json:
        out = {**d.to_dict(), "description": screened.text, "request_id": screened.request_id}
        if screened.changed and out["ocr"] is not None:  # only the screened text is shown
            out["ocr"]["text"] = _quoted(screened.text)
        console.print(json.dumps(out, ensure_ascii=False, indent=2), markup=False, soft_wrap=True)
    else:
        console.print(screened.text, markup=False, soft_wrap=True)
    took = sum(d.seconds.values())
    err_console.print(
        f"[dim]{d.width} x {d.height} {d.format}, {took:.2f} s; recorded as {screened.request_id}[/]"
    )


def video(
    file: Path = typer.Argument(..., help="a video: MP4, WebM, MKV, MOV ..."),
    srt: Path = typer.Option(None, "--srt", help="write the captions as SubRip to this file"),
    vtt: Path = typer.Option(None, "--vtt", help="write the captions as WebVTT to this file"),
    json_out: Path = typer.Option(None, "--json", help="write the whole report as JSON to this file"),
    captions: bool = typer.Option(True, "--captions/--no-captions", help="transcribe the soundtrack"),
    summary: bool = typer.Option(True, "--summary/--no-summary", help="summarise it with the language model"),
    language: str = typer.Option(
        None, "--language", "-l", help="the spoken language, ISO 639-1 (default: detected)"
    ),
    max_scenes: int = typer.Option(40, "--max-scenes", min=1, max=500, help="frames described at most"),
    model: str = MODEL,
    backend: str = BACKEND,
    policy: Path = POLICY,
    db: str = DB,
) -> None:
    """Caption a video (Whisper on its soundtrack, SRT/VTT), describe a frame of each scene, and summarise
    the whole through the pipeline; progress is shown as it goes. Every text passes the policy and is
    recorded in the audit log (endpoints cli:video:*)."""
    from clearlm.cli.common import load
    from clearlm.cli.generate import _audit_log, _policy
    from clearlm.media import formats
    from clearlm.media.video import analyse_video, summarize
    from clearlm.media.video_scenes import probe

    info = probe(file)  # a bad file fails here, before any model loads
    gov, audit = _policy(policy), _audit_log(db)
    names = {
        "scenes": "finding scenes (s)",
        "frames": "describing frames",
        "captions": "captions (s of audio)",
    }
    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def on_stage(stage: str, done: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(names[stage], total=max(round(total), 1))
            bar.update(tasks[stage], completed=round(done), total=max(round(total), 1))

        report = analyse_video(
            file,
            captions=captions,
            language=language,
            max_scenes=max_scenes,
            audit=audit,
            policy=gov,
            endpoint="cli:video",
            on_stage=on_stage,
        )
    if summary:
        b = load(model, backend)
        with err_console.status("summarising ..."):
            summarize(report, b, audit=audit, policy=gov, endpoint="cli:video")
    t = report.transcript
    for path, render in ((srt, formats.to_srt), (vtt, formats.to_vtt)):
        if path is not None:
            write_text_atomic(
                path, render(t) if t is not None else ("WEBVTT\n\n" if render is formats.to_vtt else "")
            )
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
    console.print(
        f"{file.name}: {info.duration:.1f} s, {info.width} x {info.height}, {len(report.scenes)} scenes"
    )
    for s in report.scenes:
        top = s.description.labels[0]
        console.print(f"  {s.start:7.2f}-{s.end:7.2f} s  {top.name} ({top.probability:.0%})", markup=False)
    heard = len(t.segments) if t is not None else 0
    console.print(f"captions: {heard}" + ("" if info.audio else " (no audio track)"))
    if report.summary is not None:
        console.print("summary: " + report.summary, markup=False, soft_wrap=True)


def _quoted(text: str) -> str:
    parts = text.split('"""')
    return parts[1].strip("\n") if len(parts) >= 3 else ""
