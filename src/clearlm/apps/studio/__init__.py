"""The writing studio (issue 17): projects with a story bible, an outline of parts, chapters and scenes
with beats, every version of every scene, operations on the model through the pipeline, consistency
checks against the bible, and export with the AI disclosure.

- :mod:`~clearlm.apps.studio.projects`: projects, bible entries, the outline (tables of migration 0014);
- :mod:`~clearlm.apps.studio.versions` and :mod:`~clearlm.apps.studio.diffs`: versions, word diffs, restore;
- :mod:`~clearlm.apps.studio.bible`: which entries enter a model's context (mentioned by name or alias);
- :mod:`~clearlm.apps.studio.operations` and :mod:`~clearlm.apps.studio.outline`: brainstorm, outline
  from a premise, draft, continue, rewrite a selection, tone and style, summarise into memory;
- :mod:`~clearlm.apps.studio.consistency` (with :mod:`~clearlm.apps.studio.facts`) and
  :mod:`~clearlm.apps.studio.attribution`: contradictions of the bible, entries that shaped a paragraph;
- :mod:`~clearlm.apps.studio.export`: Markdown, EPUB, and the provenance sidecar.

:class:`~clearlm.apps.studio.service.Studio` gathers them for the CLI, the API and the web page.
"""

from clearlm.apps.studio.bible import BibleEntry
from clearlm.apps.studio.projects import Node, Project, Projects, StudioError, StudioNotFoundError
from clearlm.apps.studio.service import Studio
from clearlm.apps.studio.versions import PERSON, Version, Versions

__all__ = [
    "PERSON",
    "BibleEntry",
    "Node",
    "Project",
    "Projects",
    "Studio",
    "StudioError",
    "StudioNotFoundError",
    "Version",
    "Versions",
]
