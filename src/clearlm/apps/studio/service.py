"""One object for the three shells (CLI, API, web page): a tenant's studio over a database, with the model
(through the pipeline) when operations need it."""

from __future__ import annotations

from clearlm.apps.studio import bible as bib
from clearlm.apps.studio.attribution import attribute_paragraph
from clearlm.apps.studio.consistency import Check, check_scene
from clearlm.apps.studio.export import Book, build_book
from clearlm.apps.studio.operations import Writer
from clearlm.apps.studio.projects import Projects, StudioError
from clearlm.apps.studio.turns import Asker
from clearlm.apps.studio.versions import Versions
from clearlm.errors import BackendUnavailableError


class Studio:
    """``tenant``'s studio over ``db``; ``backend`` (any backend, None: no model operations) is asked
    through the pipeline under ``policy``, recorded to ``audit``; ``embedder`` (an ``Embedder``, or a
    function returning one; None: the packaged all-MiniLM-L6-v2 when the consistency check first needs
    it); ``explainer``: a torch backend of the same model for attribution (None: ``backend``)."""

    def __init__(self, db, tenant: str = "default", backend=None, audit=None, policy=None, embedder=None,
                 api_key_id: str | None = None, explainer=None) -> None:  # fmt: skip
        self.tenant = tenant
        self.projects = Projects(db)
        self.versions = Versions(self.projects)
        self.backend = backend
        self.asker = Asker(backend, audit, policy, api_key_id, tenant) if backend is not None else None
        self._embedder = embedder
        self.explainer = explainer

    @property
    def writer(self) -> Writer:
        """The operations (BackendUnavailableError when the studio has no model)."""
        if self.asker is None:
            raise BackendUnavailableError("this studio has no model: load one to run operations")
        return Writer(self.projects, self.asker, self.versions)

    @property
    def embedder(self):
        if self._embedder is None:
            from clearlm.knowledge.base import default_embedder

            self._embedder = default_embedder()
        elif not hasattr(self._embedder, "encode"):  # a function that loads it
            self._embedder = self._embedder()
        return self._embedder

    def scene_context(self, project_id: str, scene_id: str) -> tuple[object, str, list[bib.BibleEntry]]:
        """The scene node, its current text and the bible entries in its context."""
        scene = self.projects.node(self.tenant, project_id, scene_id)
        if scene.kind != "scene":
            raise StudioError(f"{scene_id!r} is a {scene.kind}: choose a scene")
        text = self.versions.text(self.tenant, project_id, scene_id)
        entries = bib.in_context(
            self.projects.entries(self.tenant, project_id), scene.title, *scene.beats, text
        )
        return scene, text, entries

    def check(self, project_id: str, scene_id: str, use_model: bool = True, **options) -> Check:
        """The scene's contradictions of the bible (``consistency.check_scene``): the rules always, the
        retrieval and the model too when ``use_model`` and the studio has a model."""
        _, text, entries = self.scene_context(project_id, scene_id)
        if not text.strip():
            raise StudioError("the scene has no text yet: draft or write it first")
        asker = self.asker if use_model else None
        return check_scene(text, entries, asker, self.embedder if asker is not None else None,
                           project_id=project_id, **options)  # fmt: skip

    def attribute(self, project_id: str, scene_id: str, paragraph: int, ablations: int = 16) -> dict:
        """Which bible entries shaped paragraph ``paragraph`` of the scene (``attribution``)."""
        if self.asker is None:
            raise BackendUnavailableError("this studio has no model: load one to attribute a paragraph")
        scene, text, entries = self.scene_context(project_id, scene_id)
        style = self.projects.get(self.tenant, project_id).style
        asker = self.asker
        if self.explainer is not None and self.explainer is not self.backend:
            asker = Asker(self.explainer, asker.audit, asker.policy, asker.api_key_id, self.tenant)
        return attribute_paragraph(asker, text, paragraph, entries, scene.title, scene.beats, style,
                                   ablations, project_id)  # fmt: skip

    def book(self, project_id: str) -> Book:
        """The project as a book with every passage's provenance (``export.build_book``)."""
        return build_book(self.projects, self.versions, self.tenant, project_id)
