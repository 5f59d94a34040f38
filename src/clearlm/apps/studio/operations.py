"""The writer's operations, each one pipeline turn (``turns.Asker``) that turns the project's state into a
prompt and the answer back into state: a new version of the scene (``versions``) made by the model.

- ``brainstorm``: n alternatives side by side (n sampled choices of one turn; nothing stored).
- ``draft``: a scene from its beats, with the bible entries mentioned in the beats, title or text.
- ``continue_scene``: more of the scene, after its current text.
- ``rewrite``: a selection ([start, end) character offsets of the current text) rewritten under an
  instruction ("shorter", "more formal", "in the first person"); the rest of the scene kept as it is.
- ``restyle``: the whole scene (or a selection) under tone and style controls.
- ``summarise``: a chapter's scenes summarised into the bible's memory (an entry of kind "memory").

The outline from a premise is in :mod:`clearlm.apps.studio.outline`. Each result names the bible entries
that entered the context (``bible``) and the turn's audit ``request_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clearlm.apps.studio import bible as bib
from clearlm.apps.studio.projects import Projects, StudioError
from clearlm.apps.studio.turns import Asker, need_text
from clearlm.apps.studio.versions import Version, Versions
from clearlm.models.backends.base import SamplingParams

MAX_INSTRUCTION_CHARS = 500
MAX_BRAINSTORM = 8
TOKENS_PER_WORD = 1.6  # an English word is about 1.3 to 1.6 tokens for a BPE vocabulary like Qwen's


@dataclass(slots=True)
class Result:
    """An operation's outcome: the ``version`` it made (None for brainstorm and summarise), the
    ``texts`` generated (one per alternative), the ``bible`` entries in the context ({id, name, kind}),
    the audit ``request_id`` and the ``model``."""

    texts: list[str]
    bible: list[dict]
    request_id: str
    model: str
    version: Version | None = None
    entry: bib.BibleEntry | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"texts": self.texts, "bible": self.bible, "request_id": self.request_id, "model": self.model,
                "version": self.version.to_dict() if self.version else None,
                "entry": self.entry.to_dict() if self.entry else None, **self.extra}  # fmt: skip


def tokens_for(words: int) -> int:
    """The token budget of about ``words`` words (``TOKENS_PER_WORD`` tokens each), at least 16."""
    return max(16, int(words * TOKENS_PER_WORD))


class Writer:
    """The operations on ``projects`` (and their ``versions``) through ``asker``."""

    def __init__(self, projects: Projects, asker: Asker, versions: Versions | None = None) -> None:
        self.projects = projects
        self.versions = versions or Versions(projects)
        self.asker = asker

    def context(self, tenant: str, project_id: str, *texts: str) -> list[bib.BibleEntry]:
        """The bible entries that enter an operation's context on ``texts`` (``bible.in_context``)."""
        return bib.in_context(self.projects.entries(tenant, project_id), *texts)

    def brainstorm(self, tenant: str, project_id: str, request: str, n: int = 3, words: int = 60,
                   temperature: float = 0.9, seed: int | None = None) -> Result:  # fmt: skip
        """``n`` (1-8) alternatives for ``request`` ("what could go wrong at the harbour?"), sampled at
        ``temperature``, each about ``words`` words. Nothing is stored."""
        if not 1 <= n <= MAX_BRAINSTORM:
            raise StudioError(f"brainstorm gives 1 to {MAX_BRAINSTORM} alternatives, not {n}")
        request = need_text(_short(request, "request"), "request", "say what to brainstorm")
        project = self.projects.get(tenant, project_id)
        entries = self.context(tenant, project_id, request, project.premise)
        text = _with_bible(entries) + f"Premise: {project.premise or '(none)'}\n\nIdea wanted: {request}\n\n" \
            f"Give one idea in at most {words} words."  # fmt: skip
        params = SamplingParams(
            max_new_tokens=tokens_for(words), temperature=temperature, top_p=0.95, seed=seed
        )
        asked = self.asker.ask("brainstorm", text, project.style, params, n=n, project_id=project_id)
        return Result([t.strip() for t in asked.texts], _names(entries), asked.request_id, asked.model)

    def draft(self, tenant: str, project_id: str, scene_id: str, words: int = 300) -> Result:
        """Draft the scene from its beats (about ``words`` words): a new version by the model. The bible
        entries named in the beats, the scene's title or its current text enter the context.

        Raises:
            StudioError: the node is not a scene, or it has no beats and no title to draft from.
        """
        project = self.projects.get(tenant, project_id)
        scene = self._scene(tenant, project_id, scene_id)
        current = self.versions.text(tenant, project_id, scene_id)
        beats = "\n".join(f"- {b}" for b in scene.beats) or f"- {scene.title}"
        entries = self.context(tenant, project_id, scene.title, *scene.beats, current)
        text = _with_bible(entries) + f"Scene: {scene.title}\nBeats:\n{beats}\n\n" \
            f"Write this scene as prose, about {words} words, covering every beat in order."  # fmt: skip
        params = SamplingParams(max_new_tokens=tokens_for(words))
        asked = self.asker.ask("draft", text, project.style, params, project_id=project_id)
        return self._version(tenant, project_id, scene_id, asked, "draft", entries, asked.texts[0].strip())

    def continue_scene(self, tenant: str, project_id: str, scene_id: str, words: int = 120) -> Result:
        """About ``words`` more words after the scene's current text (a new version: the text + them)."""
        project = self.projects.get(tenant, project_id)
        scene = self._scene(tenant, project_id, scene_id)
        current = need_text(self.versions.text(tenant, project_id, scene_id), "scene")
        entries = self.context(tenant, project_id, scene.title, *scene.beats, current)
        text = _with_bible(entries) + f"Scene: {scene.title}\nThe scene so far:\n{current}\n\n" \
            f"Continue the scene from where it stops, about {words} words. Write only the continuation."  # fmt: skip
        asked = self.asker.ask("continue", text, project.style, SamplingParams(max_new_tokens=tokens_for(words)),
                               project_id=project_id)  # fmt: skip
        added = asked.texts[0].strip()
        joined = current.rstrip() + ("\n\n" if current.endswith("\n") else " ") + added if added else current
        return self._version(tenant, project_id, scene_id, asked, "continue", entries, joined)

    def rewrite(self, tenant: str, project_id: str, scene_id: str, start: int, end: int, instruction: str,
                operation: str = "rewrite", style: dict | None = None) -> Result:  # fmt: skip
        """Rewrite the selection ``[start, end)`` of the current text as ``instruction`` says; the rest of
        the scene is kept. A new version whose detail holds the instruction, the selection and the text
        it replaced.

        Raises:
            StudioError: an empty instruction or one over 500 characters, a selection outside the text or
                an empty one.
        """
        project = self.projects.get(tenant, project_id)
        instruction = need_text(
            _short(instruction, "instruction"), "instruction", "say how to change the passage"
        )
        current = need_text(self.versions.text(tenant, project_id, scene_id), "scene")
        if not 0 <= start < end <= len(current):
            raise StudioError(
                f"the selection [{start}, {end}) is not inside the scene's {len(current)} characters: "
                "select some text of the current version"
            )
        selected = current[start:end]
        entries = self.context(tenant, project_id, selected)
        before, after = current[max(0, start - 300) : start], current[end : end + 300]
        text = _with_bible(entries) + f"Context before: ...{before}\nContext after: {after}...\n\n" \
            f"Passage to rewrite:\n{selected}\n\nRewrite only the passage: {instruction}. " \
            "Reply with the rewritten passage alone."  # fmt: skip
        budget = max(32, int(len(selected.split()) * TOKENS_PER_WORD * 2))
        asked = self.asker.ask(operation, text, style if style is not None else project.style,
                               SamplingParams(max_new_tokens=budget), project_id=project_id)  # fmt: skip
        new = asked.texts[0].strip() or selected
        result = self._version(tenant, project_id, scene_id, asked, operation, entries,
                               current[:start] + new + current[end:],
                               {"instruction": instruction, "selection": [start, end], "replaced": selected,
                                "replacement": [start, start + len(new)]})  # fmt: skip
        return result

    def restyle(self, tenant: str, project_id: str, scene_id: str, style: dict, start: int | None = None,
                end: int | None = None) -> Result:  # fmt: skip
        """The scene (or the selection) rewritten under tone and style controls ({"tone", "person",
        "tense", "notes"}), which replace the project's for this operation only (operation "tone")."""
        from clearlm.apps.studio.projects import check_style

        style = check_style(style)
        if not style:
            raise StudioError("give at least one control: tone, person, tense or notes")
        current = need_text(self.versions.text(tenant, project_id, scene_id), "scene")
        start, end = (0, len(current)) if start is None or end is None else (start, end)
        said = "; ".join(f"{k}: {v}" for k, v in style.items())
        merged = {**self.projects.get(tenant, project_id).style, **style}
        return self.rewrite(tenant, project_id, scene_id, start, end, f"keep the events, change the style ({said})",
                            operation="tone", style=merged)  # fmt: skip

    def summarise(self, tenant: str, project_id: str, chapter_id: str, words: int = 80) -> Result:
        """Summarise a chapter's scenes (their current text) into the bible's memory: the entry
        "Memory: <chapter title>" (kind "memory"), made or replaced.

        Raises:
            StudioError: the node is not a chapter, or none of its scenes has text yet.
        """
        self.projects.get(tenant, project_id)
        chapter = self.projects.node(tenant, project_id, chapter_id)
        if chapter.kind != "chapter":
            raise StudioError(f"{chapter_id!r} is a {chapter.kind}: summarise a chapter")
        scenes = [
            self.versions.text(tenant, project_id, s.id)
            for s in self.projects.scenes(tenant, project_id, chapter_id)
        ]
        body = "\n\n".join(s for s in scenes if s.strip())
        if not body:
            raise StudioError(f"no scene of chapter {chapter.title!r} has text yet: draft one first")
        text = f"Chapter: {chapter.title}\n\n{body}\n\nSummarise what happens in this chapter in at most " \
            f"{words} words: who does what, where, and what changes. Facts only."  # fmt: skip
        asked = self.asker.ask("summarise", text, {}, SamplingParams(max_new_tokens=tokens_for(words)),
                               project_id=project_id)  # fmt: skip
        summary = asked.texts[0].strip() or "(empty summary)"
        name = f"Memory: {chapter.title}"[: bib.MAX_NAME_CHARS]
        existing = next((e for e in self.projects.entries(tenant, project_id) if e.name == name), None)
        if existing is None:
            entry = self.projects.add_entry(tenant, project_id, "memory", name, summary, source=chapter_id)
        else:
            entry = self.projects.update_entry(tenant, project_id, existing.id, text=summary)
        return Result([summary], [], asked.request_id, asked.model, entry=entry)

    # ---- helpers ------------------------------------------------------------------------------------

    def _scene(self, tenant: str, project_id: str, scene_id: str):
        scene = self.projects.node(tenant, project_id, scene_id)
        if scene.kind != "scene":
            raise StudioError(f"{scene_id!r} is a {scene.kind}: choose a scene")
        return scene

    def _version(self, tenant, project_id, scene_id, asked, operation, entries, text, detail=None) -> Result:
        names = _names(entries)
        if asked.refused:  # the policy replaced the answer: no version is made of its refusal
            return Result(asked.texts, names, asked.request_id, asked.model, extra={"refused": True})
        detail = {**(detail or {}), "bible": [e["id"] for e in names], "request_id": asked.request_id}
        version = self.versions.add(tenant, project_id, scene_id, text, asked.model, operation, detail)
        return Result(asked.texts, names, asked.request_id, asked.model, version=version)


def _with_bible(entries: list[bib.BibleEntry]) -> str:
    return f"Story bible:\n{bib.render(entries)}\n\n" if entries else ""


def _names(entries: list[bib.BibleEntry]) -> list[dict]:
    return [{"id": e.id, "name": e.name, "kind": e.kind} for e in entries]


def _short(text: str, what: str) -> str:
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise StudioError(f"the {what} has {len(text)} characters; the limit is {MAX_INSTRUCTION_CHARS}")
    return text.strip()
