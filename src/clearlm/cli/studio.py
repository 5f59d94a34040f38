"""``clearlm studio``: the writing studio from the command line (the ``default`` tenant's projects in the
database ``--db``, the same the server's /studio page shows). Plan (new, bible, add, show), write (draft,
rewrite, edit), compare (versions, diff, restore), check against the bible, export to Markdown or EPUB
with the AI-disclosure sidecar. Every bad input ends in one message and exit status 1."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from clearlm.cli.common import DB, console, err_console
from clearlm.errors import InvalidInputError
from clearlm.models import DEFAULT_MODEL

app = typer.Typer(help="The writing studio: bible, outline, drafts, versions, export.", no_args_is_help=True)
TENANT = "default"
MODEL = typer.Option(DEFAULT_MODEL, "--model", "-m", help="catalog name, local folder or .gguf")


def _studio(db: str | None, model: str | None = None):
    """The studio over the database, with the model loaded when ``model`` is given (a seam for tests)."""
    from clearlm.apps.studio import Studio
    from clearlm.store import AuditLog, Database

    database = Database(db)
    if model is None:
        return Studio(database, TENANT)
    from clearlm.cli.common import load

    return Studio(database, TENANT, load(model), AuditLog(database))


@app.command("new")
def new(
    title: str, premise: str = typer.Option("", "--premise", help="what the story is about"), db: str = DB
):
    """Start a project; prints its id."""
    p = _studio(db).projects.create(TENANT, title, premise)
    console.print(p.id)


@app.command("list")
def list_(db: str = DB):
    """The projects: id and title."""
    for p in _studio(db).projects.list(TENANT):
        console.print(f"{p.id}  {escape(p.title)}")


@app.command("bible")
def bible(
    project: str,
    kind: str = typer.Argument(..., help="character, place, style, fact or memory"),
    name: str = typer.Argument(...),
    text: str = typer.Argument(...),
    alias: list[str] = typer.Option([], "--alias", help="another name it goes by (repeatable)"),
    db: str = DB,
):
    """Add a story-bible entry (it enters the model's context when its name or an alias is mentioned)."""
    e = _studio(db).projects.add_entry(TENANT, project, kind, name, text, alias)
    console.print(e.id)


@app.command("add")
def add(
    project: str,
    kind: str = typer.Argument(..., help="part, chapter or scene"),
    title: str = typer.Argument(...),
    parent: str = typer.Option(None, "--parent", help="the part (of a chapter) or chapter (of a scene)"),
    beat: list[str] = typer.Option([], "--beat", help="a scene's beat, in order (repeatable)"),
    db: str = DB,
):
    """Add a part, a chapter or a scene to the outline; prints its id."""
    console.print(_studio(db).projects.add_node(TENANT, project, kind, title, parent, beat).id)


@app.command("show")
def show(project: str, db: str = DB):
    """The outline as a tree (ids, titles, beats, versions) and the bible."""
    st = _studio(db)

    def walk(nodes, depth: int) -> None:
        for n in nodes:
            extra = ""
            if n.kind == "scene":
                extra = f"  [dim]({len(st.versions.list(TENANT, project, n.id))} versions)[/]"
            console.print(f"{'  ' * depth}{n.kind} {n.id}  {escape(n.title)}{extra}")
            for b in n.beats:
                console.print(f"{'  ' * (depth + 1)}- {escape(b)}")
            walk(n.children, depth + 1)

    walk(st.projects.outline(TENANT, project), 0)
    for e in st.projects.entries(TENANT, project):
        console.print(f"[bold]{e.kind}[/] {escape(e.name)}: {escape(e.text)}")


@app.command("draft")
def draft(
    project: str, scene: str, words: int = typer.Option(300, "--words"), model: str = MODEL, db: str = DB
):
    """Draft a scene from its beats and the bible (a new version); prints the text."""
    st = _studio(db, model)
    result = st.writer.draft(TENANT, project, scene, words)
    err_console.print(f"[dim]bible in context: {', '.join(b['name'] for b in result.bible) or 'none'}[/]")
    console.print(escape(result.version.text if result.version else result.texts[0]))


@app.command("rewrite")
def rewrite(
    project: str, scene: str, start: int, end: int, instruction: str, model: str = MODEL, db: str = DB
):
    """Rewrite the characters [START, END) of the scene's current text as INSTRUCTION says."""
    result = _studio(db, model).writer.rewrite(TENANT, project, scene, start, end, instruction)
    console.print(escape(result.version.text if result.version else result.texts[0]))


@app.command("edit")
def edit(project: str, scene: str, file: Path = typer.Argument(..., help="a UTF-8 text file"), db: str = DB):
    """A person's edit: FILE becomes the scene's text (a new version by "person")."""
    from clearlm.cli.common import read_prompt

    v = _studio(db).versions.edit(TENANT, project, scene, read_prompt(None, file))
    console.print(f"version {v.number}")


@app.command("versions")
def versions(project: str, scene: str, db: str = DB):
    """The scene's versions: number, who made it, operation, words."""
    for v in _studio(db).versions.list(TENANT, project, scene):
        console.print(f"{v.number:>3}  {escape(v.author):<24} {v.operation:<10} {len(v.text.split())} words")


@app.command("diff")
def diff(project: str, scene: str, a: int, b: int, db: str = DB):
    """The word diff from version A to B ([-removed-] {+added+})."""
    out = []
    for o in _studio(db).versions.diff(TENANT, project, scene, a, b):
        if o.op == "equal":
            out.append(escape(o.new))
        else:
            removed = f"[red]{escape('[-' + o.old + '-]')}[/]" if o.old else ""
            out.append(removed + (f"[green]{escape('{+' + o.new + '+}')}[/]" if o.new else ""))
    console.print("".join(out))


@app.command("restore")
def restore(project: str, scene: str, number: int, db: str = DB):
    """Make version NUMBER current again (as a new version)."""
    console.print(f"version {_studio(db).versions.restore(TENANT, project, scene, number).number}")


@app.command("check")
def check(
    project: str,
    scene: str,
    use_model: bool = typer.Option(False, "--with-model", help="also retrieval plus the model's check"),
    model: str = MODEL,
    db: str = DB,
):
    """Contradictions of the bible in the scene, each with the two passages side by side."""
    st = _studio(db, model if use_model else None)
    result = st.check(project, scene, use_model=use_model)
    for f in result.flags:
        how = (
            f"{f.attribute}: {f.bible_value} vs {f.scene_value}"
            if f.method == "rule"
            else f"P={f.p_contradiction:.2f}"
        )
        console.print(f"[bold]{escape(f.entry['name'])}[/] ({f.method}, {escape(how)})")
        console.print(f"  bible: {escape(f.bible)}\n  scene: {escape(f.scene)}")
    err_console.print(f"{len(result.flags)} contradiction(s)")
    if result.flags:
        raise typer.Exit(2)


@app.command("export")
def export(project: str, out: Path = typer.Argument(..., help="PATH.md or PATH.epub"), db: str = DB):
    """Write the book (Markdown or EPUB, with the AI-disclosure statement) and PATH.ai.json beside it:
    every passage, the model that generated it, and whether a person edited it."""
    import json

    from clearlm.apps.studio.export import sidecar, to_epub, to_markdown
    from clearlm.govern.disclosure import sidecar_path
    from clearlm.paths import write_text_atomic

    if out.suffix not in (".md", ".epub"):
        raise InvalidInputError(f"cannot tell the format of {out}: end the name with .md or .epub")
    if not out.parent.is_dir():
        raise InvalidInputError(f"cannot write {out}: the folder {out.parent} does not exist")
    book = _studio(db).book(project)
    if out.suffix == ".epub":
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(to_epub(book))
        tmp.replace(out)
    else:
        write_text_atomic(out, to_markdown(book))
    side = write_text_atomic(sidecar_path(out), json.dumps(sidecar(book, out.name), indent=2))
    err_console.print(f"{len(book.passages)} passages [dim]->[/] {escape(str(out))}, {escape(str(side))}")
