"""What the adapter API and browser tests share: the tuning tests' apt document as a folder, the cheap
e-mail policy, and one tiny adapter trained with domain questions (optionally over a knowledge base)."""

from __future__ import annotations

from pathlib import Path

import torch

APT = """# Apt basics

The apt tool installs packages from the Debian archive. Run apt update to refresh the package lists, then
apt install to add a package.

## Removing

Use apt remove to delete a package but keep its configuration, or apt purge to delete both.

## Sources

The sources list names the archive mirrors.
"""


def apt_docs(folder: Path, copies: int = 3) -> Path:
    """``copies`` Markdown files about apt in ``folder`` (enough text for a few training sequences)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(copies):
        (folder / f"part{i}.md").write_text(APT.replace("Apt basics", f"Apt basics {i}"), encoding="utf-8")
    return folder


def email_policy_now():
    """A real governance policy whose input stage redacts e-mail addresses (a regex scanner: no model)."""
    from clearlm.govern import parse_policy

    return parse_policy(
        "name: emails\ninput:\n  - {scanner: regex, action: redact, threshold: 0.1, patterns: "
        "{EMAIL: '[\\w.]+@[\\w.]+'}}\n",
        embedder_factory=None,
    )


def long_tiny_base(tokenizer, name: str = "tiny-random-qwen2"):
    """The tiny random Qwen2 (float32) with a context long enough for knowledge-base prompts."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    return TorchBackend(make_model(tokenizer, dtype=torch.float32, context=8192), tokenizer, name)
