"""Fixtures for the tuning tests: a tiny random Qwen2-shaped base (float32), data files, a cheap policy."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

from conftest import make_model

DOC = """# Apt basics

The apt tool installs packages from the Debian archive. Run apt update to refresh the package lists, then
apt install to add a package. The capital of Italy is Rome.

## Removing

Use apt remove to delete a package but keep its configuration, or apt purge to delete both. The Eiffel Tower
is located in the city of Paris, France.

## Sources

The sources list names the archive mirrors. Why is the sky blue? Because of Rayleigh scattering of sunlight.
"""


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one torch thread (on a busy 2-core machine, two threads wait on each other ~100x longer
    than the tiny matrix products take)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def tiny_base(tiny_tokenizer):
    """A fresh float32 TorchBackend over a random 2-layer Qwen2 model (each test may wrap it in LoRA)."""
    from clearlm.models.backends.torch_backend import TorchBackend

    return TorchBackend(make_model(tiny_tokenizer, dtype=torch.float32), tiny_tokenizer, "tiny-random-qwen2")


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"part{i}.md").write_text(DOC.replace("Apt basics", f"Apt basics {i}"), encoding="utf-8")
    return folder


@pytest.fixture
def email_policy():
    """A real governance policy whose input stage redacts e-mail addresses (a regex scanner: no model)."""
    from clearlm.govern import parse_policy

    return parse_policy(
        "name: emails\ninput:\n  - {scanner: regex, action: redact, threshold: 0.1, patterns: "
        "{EMAIL: '[\\w.]+@[\\w.]+'}}\n",
        embedder_factory=None,
    )


@pytest.fixture
def clearlm(capsys, monkeypatch):
    """``clearlm(*args)`` runs the real entry point in this process (160 columns); returns its returncode,
    stdout and stderr."""
    from clearlm.cli import main

    monkeypatch.setenv("COLUMNS", "160")

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["clearlm", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run
