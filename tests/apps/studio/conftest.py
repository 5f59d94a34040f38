"""The studio's fixtures: a tiny random chat model with a 4,096-token context (the studio's prompts carry
bible entries and scenes), a real SQLite database with its audit log, and a project with a bible."""

from __future__ import annotations

import pytest
import torch

from clearlm.apps.studio import Studio
from clearlm.store import AuditLog, Database

# A real scene's bible: made-up people and places (so no model knows them beforehand).
BIBLE = [
    ("character", "Mara Voss", ["Mara"], "Mara Voss is the lighthouse keeper of Brisk Harbour. She has green eyes "
     "and short grey hair. She was born in 1904."),
    ("character", "Tobin Reyes", ["Tobin"], "Tobin Reyes is a young fisherman who owes Mara money."),
    ("place", "Brisk Harbour", ["the harbour"], "Brisk Harbour is a fishing port on the north coast. Its "
     "lighthouse was designed by Anika Brandt and first lit in 1931."),
    ("place", "Oskel", [], "Oskel is a mountain village reached only by a cable car."),
    ("style", "House style", [], "Short sentences. No adverbs. Past tense."),
]  # fmt: skip


@pytest.fixture(scope="session")
def studio_backend(tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    model = make_model(tiny_tokenizer, dtype=torch.float32, context=4096)
    return TorchBackend(model, tiny_tokenizer, "tiny-random-qwen2")


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    database = Database(f"sqlite:///{tmp_path / 'studio.db'}")
    yield database
    database.close()


@pytest.fixture
def studio(db, studio_backend):
    return Studio(db, "acme", studio_backend, AuditLog(db))


@pytest.fixture
def project(studio):
    """A project with the bible above and one part > chapter > scene with beats; returns (project, scene)."""
    p = studio.projects.create("acme", "The Keeper", "A lighthouse keeper hides a smuggler's debt.")
    for kind, name, aliases, text in BIBLE:
        studio.projects.add_entry("acme", p.id, kind, name, text, aliases)
    part = studio.projects.add_node("acme", p.id, "part", "Part One")
    chapter = studio.projects.add_node("acme", p.id, "chapter", "Storm", part.id)
    scene = studio.projects.add_node("acme", p.id, "scene", "The knock", chapter.id,
                                     ["Tobin knocks at the lighthouse door at night", "Mara lets him in"])  # fmt: skip
    return p, scene
