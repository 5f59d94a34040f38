"""Atomic writes: unique temporary files, no leftovers, the mode a plain open() would give."""

from __future__ import annotations

import os
import stat
import threading

from clearlm.paths import write_text_atomic


def test_concurrent_writers_of_one_path_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "out.json"
    texts = [str(i) * 200_000 for i in range(8)]
    errors: list[BaseException] = []

    def write(text: str) -> None:
        try:
            for _ in range(5):
                write_text_atomic(path, text)
        except BaseException as exc:  # a shared temporary name raises FileNotFoundError on rename
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_text() in texts  # one writer's whole text, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left behind


def test_the_written_file_has_the_mode_open_would_give(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "page.html", "<p>hi</p>")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
