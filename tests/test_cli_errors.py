"""The CLI prints a user's mistake as one message, whatever characters it holds."""

from __future__ import annotations

import os
import subprocess
import sys


def test_an_error_message_with_brackets_prints_as_written(tmp_path):
    # rich reads "[...]" as markup: unescaped, "[/bold]" raised a MarkupError traceback and "[x]" vanished
    env = {**os.environ, "CLEARLM_HOME": str(tmp_path), "COLUMNS": "300", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "clearlm.cli", "card", "[/bold]nope[x]"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "unknown model '[/bold]nope[x]'" in done.stderr
