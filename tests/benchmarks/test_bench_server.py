"""The serving benchmark runs end to end (a tiny configuration) and prints its ratios. Not a speed test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.llamacpp]


SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_server.py"


def test_bench_server_prints_its_ratios(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tokens", "6", "--streams", "2", "--runs", "1", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for label in ("llama-cpp-python", "clearlm serve", "ttft(long)", "aggregate"):
        assert label in out
    ratios = [float(x) for x in re.findall(r"ratio .*?:\s+([0-9.]+)", out)]
    assert len(ratios) == 2 and all(r > 0 for r in ratios)
    assert int(re.search(r"long prompt: (\d+) tokens", out).group(1)) >= 500
