"""An outline from a premise: one pipeline turn whose output is constrained to JSON against
:data:`SCHEMA` (``SamplingParams.json_output``: enforced while decoding), then validated here again
(:func:`parse_outline`: the grammar cannot promise that generation ended before the token limit), and
added to the project's outline as parts, chapters and scenes with beats."""

from __future__ import annotations

import json

from clearlm.apps.studio import bible as bib
from clearlm.apps.studio.operations import Result, Writer
from clearlm.apps.studio.projects import StudioError
from clearlm.apps.studio.turns import need_text
from clearlm.models.backends.base import JsonOutput, SamplingParams

MAX_PARTS, MAX_CHAPTERS, MAX_SCENES, MAX_BEATS, MAX_TITLE = 3, 4, 4, 4, 80


def _list(items: dict, most: int) -> dict:
    return {"type": "array", "items": items, "minItems": 1, "maxItems": most}


_TITLE = {"type": "string", "minLength": 1, "maxLength": MAX_TITLE}
_SCENE = {"type": "object", "properties": {"title": _TITLE, "beats": _list({"type": "string", "minLength": 1,
          "maxLength": 200}, MAX_BEATS)}, "required": ["title", "beats"], "additionalProperties": False}  # fmt: skip
_CHAPTER = {"type": "object", "properties": {"title": _TITLE, "scenes": _list(_SCENE, MAX_SCENES)},
            "required": ["title", "scenes"], "additionalProperties": False}  # fmt: skip
_PART = {"type": "object", "properties": {"title": _TITLE, "chapters": _list(_CHAPTER, MAX_CHAPTERS)},
         "required": ["title", "chapters"], "additionalProperties": False}  # fmt: skip
SCHEMA = {"type": "object", "properties": {"parts": _list(_PART, MAX_PARTS)}, "required": ["parts"],
          "additionalProperties": False}  # fmt: skip


class OutlineError(StudioError):
    """The model's outline is not valid (cut off at the token limit, or a field missing)."""


def parse_outline(text: str) -> list[dict]:
    """The parts of an outline JSON text: [{"title", "chapters": [{"title", "scenes": [{"title",
    "beats": [str]}]}]}], every title and beat non-blank, counts within the schema's bounds.

    Raises:
        OutlineError: not JSON (e.g. cut off), or not of that shape; the message names the place.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutlineError(
            f"the model's outline is not complete JSON ({exc.msg} at character {exc.pos}): it was probably cut "
            "off at the token limit; raise max_tokens or ask for fewer chapters"
        ) from None

    def items(value, key: str, most: int, where: str) -> list:
        found = value.get(key) if isinstance(value, dict) else None
        if not isinstance(found, list) or not 1 <= len(found) <= most:
            raise OutlineError(
                f"the model's outline has no valid {key!r} list at {where} (1 to {most} wanted)"
            )
        return found

    def title(value, where: str) -> str:
        t = value.get("title") if isinstance(value, dict) else None
        if not isinstance(t, str) or not t.strip():
            raise OutlineError(f"the model's outline has a blank title at {where}")
        return t.strip()[:MAX_TITLE]

    parts = []
    for i, p in enumerate(items(data, "parts", MAX_PARTS, "the top")):
        chapters = []
        for j, c in enumerate(items(p, "chapters", MAX_CHAPTERS, f"part {i + 1}")):
            scenes = []
            for k, s in enumerate(items(c, "scenes", MAX_SCENES, f"part {i + 1} chapter {j + 1}")):
                where = f"part {i + 1} chapter {j + 1} scene {k + 1}"
                beats = [
                    b.strip() for b in items(s, "beats", MAX_BEATS, where) if isinstance(b, str) and b.strip()
                ]
                if not beats:
                    raise OutlineError(f"the model's outline has no beat at {where}")
                scenes.append({"title": title(s, where), "beats": beats})
            chapters.append({"title": title(c, f"part {i + 1} chapter {j + 1}"), "scenes": scenes})
        parts.append({"title": title(p, f"part {i + 1}"), "chapters": chapters})
    return parts


def outline_from_premise(writer: Writer, tenant: str, project_id: str, premise: str | None = None,
                         chapters: int = 3, max_tokens: int = 900, add: bool = True) -> Result:  # fmt: skip
    """Ask for an outline of the project's premise (or ``premise``) in about ``chapters`` chapters
    (1-4), validated (:func:`parse_outline`), and with ``add`` append it to the project's outline.
    ``Result.extra["outline"]`` holds the parts; ``["nodes"]`` the ids of the parts added.

    Raises:
        OutlineError: the model's output is not a valid outline. StudioError: no premise.
    """
    if not 1 <= chapters <= MAX_CHAPTERS:
        raise StudioError(f"ask for 1 to {MAX_CHAPTERS} chapters, not {chapters}")
    project = writer.projects.get(tenant, project_id)
    premise = need_text((premise if premise is not None else project.premise).strip(), "premise")
    entries = writer.context(tenant, project_id, premise)
    text = (f"Story bible:\n{bib.render(entries)}\n\n" if entries else "") + f"Premise: {premise}\n\n" \
        f"Outline this story as JSON: parts, each with chapters (about {chapters} in all), each with 1 to " \
        f"{MAX_SCENES} scenes, each scene with a title and 1 to {MAX_BEATS} short beats (what happens)."  # fmt: skip
    params = SamplingParams(max_new_tokens=max_tokens, json_output=JsonOutput(json.dumps(SCHEMA)))
    asked = writer.asker.ask("outline", text, project.style, params, project_id=project_id)
    if asked.refused:
        raise StudioError(f"the policy refused the outline: {asked.texts[0]}")
    parts = parse_outline(asked.texts[0])
    nodes = []
    if add:
        for p in parts:
            part = writer.projects.add_node(tenant, project_id, "part", p["title"])
            nodes.append(part.id)
            for c in p["chapters"]:
                chapter = writer.projects.add_node(tenant, project_id, "chapter", c["title"], part.id)
                for s in c["scenes"]:
                    writer.projects.add_node(tenant, project_id, "scene", s["title"], chapter.id, s["beats"])
    names = [{"id": e.id, "name": e.name, "kind": e.kind} for e in entries]
    return Result(asked.texts, names, asked.request_id, asked.model, extra={"outline": parts, "nodes": nodes})
