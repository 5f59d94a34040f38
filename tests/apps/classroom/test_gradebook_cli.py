"""``clearlm classroom grade`` and ``export``: a batch graded into the database and written as CSV, a rerun
that grades nothing, and bad input that ends in one message and exit status 1 (no traceback, no model)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearlm.apps.classroom.grading_calibration import Calibration
from clearlm.cli import app
from clearlm.cli import classroom as classroom_cmd

# the grader's packaged calibration has no entry for the tiny model: it uses another, uncalibrated
ENTRY = {"mean": [0] * 10, "scale": [1] * 10, "coef": [[0] * 10] * 3, "intercept": [0, 0, 1]}
RUBRIC = Path(__file__).parents[3] / "benchmarks" / "data" / "grading" / "rubrics" / "bio-photosynthesis.yaml"


@pytest.fixture(scope="module")
def backend(tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    return TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")


def test_grade_then_rerun_then_export(tmp_path, monkeypatch, backend):
    monkeypatch.setattr(classroom_cmd, "_load", lambda model: backend)
    uncalibrated = classmethod(lambda cls, model, data=None: cls(ENTRY, calibrated=False))
    monkeypatch.setattr(Calibration, "for_model", uncalibrated)
    answers = tmp_path / "answers.csv"
    answers.write_text('id,learner,answer\n1,ann,"Light, water and CO2; it makes glucose."\n2,bob,\n')
    db = f"sqlite:///{tmp_path / 'c.db'}"
    out = tmp_path / "grades.csv"
    args = ["classroom", "grade", str(RUBRIC), str(answers), "--out", str(out), "--db", db]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "2 graded" in first.output and "0 graded before" in first.output
    rows = list(csv.DictReader(out.open()))
    assert [(r["answer_id"], r["learner"], r["rubric_id"]) for r in rows] == [
        ("1", "ann", "bio-photosynthesis"),
        ("2", "bob", "bio-photosynthesis"),
    ]
    assert rows[1]["score"] == "0" and "empty" in rows[1]["feedback"]  # an empty answer scores 0
    assert rows[0]["status"] == "in_review"  # the tiny model has no calibration: a teacher checks
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "0 graded" in again.output and "2 graded before" in again.output
    exported = tmp_path / "export.csv"
    done = CliRunner().invoke(
        app, ["classroom", "export", "bio-photosynthesis", "--out", str(exported), "--db", db]
    )
    assert done.exit_code == 0 and exported.read_text() == out.read_text()


@pytest.mark.parametrize(
    ("answers", "rubric", "message"),
    [
        ("id,answer\n1,x\n", None, "lacks the column"),
        (None, None, "cannot read the answers file"),
        ("id,learner,answer\n1,a,b\n", "id: x\nversion: 1\n", "rubric"),
    ],
)
def test_bad_input_is_one_message_and_exit_1(tmp_path, answers, rubric, message):
    a = tmp_path / "answers.csv"
    if answers is not None:
        a.write_text(answers)
    r = RUBRIC
    if rubric is not None:
        r = tmp_path / "bad.yaml"
        r.write_text(rubric)
    env = {**os.environ, "CLEARLM_HOME": str(tmp_path / "home")}
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run = subprocess.run(
        [sys.executable, "-m", "clearlm.cli", "classroom", "grade", str(r), str(a), "--db", db],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert "loading" not in run.stderr  # refused before any model was loaded
