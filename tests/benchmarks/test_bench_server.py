"""The serving benchmark runs end to end (a tiny configuration) and prints its table. Not a speed test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.llamacpp]


SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_server.py"


def test_bench_server_runs_its_arms_and_prints_the_table(tmp_path):
    arms = "default,llamacpp"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--arms", arms, "--tokens", "6", "--streams", "2", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    rows = re.findall(r"^\| (\w+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+)", proc.stdout, re.M)
    assert [r[0] for r in rows] == arms.split(",")
    assert all(float(x) > 0 for r in rows for x in (r[1], r[3]))  # tok/s at 1 and at 2 streams
    assert "no engine alone in this run" in proc.stdout
