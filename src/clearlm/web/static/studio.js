// clearlm writing studio (/studio): the outline tree, the scene editor with its operations, the versions
// with word diffs and restore, the bible. Everything goes through /v1/studio; every text a person or a
// model wrote is set as text (clearlm.el), never parsed as HTML.
"use strict";

(() => {
  const { api, attempt, say, el } = clearlm;
  const $ = (id) => document.getElementById(id);
  const state = { project: null, scene: null, data: null, versions: [] };
  const base = () => `/v1/studio/projects/${encodeURIComponent(state.project)}`;
  const sceneBase = () => `${base()}/scenes/${encodeURIComponent(state.scene)}`;
  const text = $("studio-text");
  const sceneButtons = ["studio-draft", "studio-continue", "studio-save", "studio-check", "studio-rewrite", "studio-restyle"];

  async function loadProjects(select) {
    const { data } = await api("/v1/studio/projects");
    const box = $("studio-project");
    box.replaceChildren(el("option", { value: "" }, "choose a project"),
      ...data.map((p) => el("option", { value: p.id }, p.title)));
    if (select) box.value = select;
  }

  async function openProject(id) {
    state.project = id || null;
    state.scene = null;
    $("studio-work").hidden = !id;
    for (const [link, format] of [["studio-export-md", "markdown"], ["studio-export-epub", "epub"]]) {
      $(link).hidden = !id;
      $(link).href = id ? `/v1/studio/projects/${encodeURIComponent(id)}/export?format=${format}` : "#";
    }
    if (!id) return;
    const url = new URL(location.href);
    url.searchParams.set("project", id);
    history.replaceState(null, "", url);
    await reloadProject();
    showScene(null);
  }

  async function reloadProject() {
    state.data = await api(base());
    $("studio-outline").replaceChildren(...state.data.outline.map(treeItem));
    const parents = [];
    const walk = (nodes) => nodes.forEach((n) => { if (n.kind !== "scene") { parents.push(n); walk(n.children || []); } });
    walk(state.data.outline);
    $("studio-node-parent").replaceChildren(el("option", { value: "" }, "(top level)"),
      ...parents.map((n) => el("option", { value: n.id }, `${n.kind}: ${n.title}`)));
    $("studio-bible").replaceChildren(...state.data.bible.map((e) =>
      el("li", { dataset: { id: e.id } }, el("strong", {}, e.name), ` (${e.kind}${e.aliases.length ? "; also " + e.aliases.join(", ") : ""}): `, e.text)));
    if (!state.data.bible.length) $("studio-bible").append(el("li", { class: "muted" }, "No entries yet."));
  }

  function treeItem(node) {
    const label = [el("span", { class: "kind" }, node.kind), node.title];
    const head = node.kind === "scene"
      ? el("button", { type: "button", class: "link", dataset: { scene: node.id }, "aria-current": String(node.id === state.scene),
          onclick: () => attempt(() => showScene(node.id)) }, ...label)
      : el("span", {}, ...label);
    const kids = node.children && node.children.length ? el("ul", {}, ...node.children.map(treeItem)) : "";
    return el("li", {}, head, kids);
  }

  function findNode(id, nodes = state.data.outline) {
    for (const n of nodes) {
      if (n.id === id) return n;
      const found = n.children ? findNode(id, n.children) : null;
      if (found) return found;
    }
    return null;
  }

  async function showScene(id) {
    state.scene = id;
    for (const b of document.querySelectorAll("#studio-outline [data-scene]")) b.setAttribute("aria-current", String(b.dataset.scene === id));
    for (const b of sceneButtons) $(b).disabled = !id;
    text.disabled = !id;
    $("studio-flags").replaceChildren();
    $("studio-diff").replaceChildren();
    $("studio-context").textContent = "";
    if (!id) {
      $("studio-scene-title").textContent = "Choose a scene in the outline";
      $("studio-beats").replaceChildren();
      text.value = "";
      $("studio-versions").replaceChildren();
      return;
    }
    const scene = await api(sceneBase());
    $("studio-scene-title").textContent = `Scene: ${scene.title}`;
    $("studio-beats").replaceChildren(...scene.beats.map((b) => el("li", {}, b)));
    text.value = scene.text;
    showVersions(scene.versions);
  }

  function showVersions(versions) {
    state.versions = versions;
    const current = versions.length ? versions[versions.length - 1].number : null;
    $("studio-versions").replaceChildren(...versions.map((v) => el("li", { dataset: { number: v.number } },
      el("span", {}, `v${v.number} · ${v.operation} by ${v.author} · ${v.words} word${v.words === 1 ? "" : "s"} `),
      v.number === current ? el("span", { class: "badge" }, "current")
        : el("button", { type: "button", class: "link", "aria-label": `Restore version ${v.number}`,
            onclick: (e) => attempt(() => restore(v.number), { busy: e.currentTarget }) }, "Restore"))));
    const options = () => versions.map((v) => el("option", { value: v.number }, `v${v.number}`));
    $("studio-a").replaceChildren(...options());
    $("studio-b").replaceChildren(...options());
    if (versions.length > 1) $("studio-a").value = versions[versions.length - 2].number;
    if (versions.length) $("studio-b").value = current;
  }

  async function afterVersion(result, message) {
    const scene = await api(sceneBase());
    text.value = scene.text;
    showVersions(scene.versions);
    if (result && result.bible) {
      $("studio-context").textContent = result.bible.length
        ? `Bible entries in the model's context: ${result.bible.map((b) => b.name).join(", ")}` : "No bible entry was in the context.";
    }
    say(message);
  }

  // A person's unsaved changes become a version before an operation works on the text.
  async function saveIfChanged() {
    const scene = await api(sceneBase());
    if (text.value === scene.text) return false;
    await api(`${sceneBase()}/text`, { method: "PUT", body: { text: text.value } });
    return true;
  }

  const words = () => Math.max(10, Math.min(2000, Number($("studio-words").value) || 150));

  async function operation(path, body, message) {
    const result = await api(`${sceneBase()}/${path}`, { method: "POST", body });
    await afterVersion(result, message);
  }

  async function restore(number) {
    await api(`${sceneBase()}/restore`, { method: "POST", body: { number } });
    await afterVersion(null, `Version ${number} restored as a new version`);
  }

  async function compare() {
    const a = Number($("studio-a").value), b = Number($("studio-b").value);
    if (!a || !b) throw new Error("The scene needs two versions to compare");
    const d = await api(`${sceneBase()}/diff?a=${a}&b=${b}`);
    $("studio-diff").replaceChildren(
      el("p", { class: "small muted" }, `v${a} → v${b}: ${d.added} words added, ${d.removed} removed`),
      ...d.ops.flatMap((o) => o.op === "equal" ? [o.new]
        : [o.old ? el("del", {}, o.old) : "", o.new ? el("ins", {}, o.new) : ""]));
  }

  function showFlags(check) {
    const box = $("studio-flags");
    if (!check.flags.length) {
      box.replaceChildren(el("p", { class: "small" }, `No contradiction of the bible found (${check.pairs_asked} sentence pairs asked of the model).`));
      return;
    }
    box.replaceChildren(el("h3", {}, `${check.flags.length} possible contradiction${check.flags.length === 1 ? "" : "s"}`),
      ...check.flags.map((f) => el("div", { class: "studio-flag" },
        el("p", { class: "small" }, el("strong", {}, f.entry.name), " · ",
          f.method === "rule" ? `${f.attribute}: ${f.bible_value} in the bible, ${f.scene_value} in the scene`
            : `the model's probability of a contradiction: ${f.p_contradiction.toFixed(2)}`),
        el("div", { class: "pair" },
          el("div", {}, el("p", { class: "small muted" }, "Bible"), el("blockquote", {}, f.bible)),
          el("div", {}, el("p", { class: "small muted" }, "Scene"), el("blockquote", {}, f.scene))))));
  }

  $("studio-project").addEventListener("change", (e) => attempt(() => openProject(e.target.value)));
  $("studio-new").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const p = await api("/v1/studio/projects", { method: "POST", body: { title: $("studio-new-title").value } });
      $("studio-new-title").value = "";
      await loadProjects(p.id);
      await openProject(p.id);
      say(`Project ${p.title} created`);
    });
  });
  $("studio-add-node").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const kind = $("studio-node-kind").value;
      const body = { kind, title: $("studio-node-title").value, parent_id: $("studio-node-parent").value || null,
        beats: kind === "scene" ? $("studio-node-beats").value.split("\n").filter((b) => b.trim()) : [] };
      const node = await api(`${base()}/nodes`, { method: "POST", body });
      $("studio-node-title").value = "";
      $("studio-node-beats").value = "";
      await reloadProject();
      if (node.kind === "scene") await showScene(node.id);
      say(`${node.kind} added`);
    });
  });
  $("studio-add-entry").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const body = { kind: $("studio-entry-kind").value, name: $("studio-entry-name").value, text: $("studio-entry-text").value,
        aliases: $("studio-entry-aliases").value.split(",").map((a) => a.trim()).filter(Boolean) };
      await api(`${base()}/bible`, { method: "POST", body });
      for (const id of ["studio-entry-name", "studio-entry-aliases", "studio-entry-text"]) $(id).value = "";
      await reloadProject();
      say(`Bible entry ${body.name} added`);
    });
  });
  $("studio-draft").addEventListener("click", (e) => attempt(() => operation("draft", { words: words() }, "Drafted: a new version"), { busy: e.currentTarget }));
  $("studio-continue").addEventListener("click", (e) => attempt(async () => {
    await saveIfChanged();
    await operation("continue", { words: words() }, "Continued: a new version");
  }, { busy: e.currentTarget }));
  $("studio-save").addEventListener("click", (e) => attempt(async () => {
    const saved = await saveIfChanged();
    await afterVersion(null, saved ? "Your edit is saved as a new version" : "Nothing changed since the last version");
  }, { busy: e.currentTarget }));
  $("studio-check").addEventListener("click", (e) => attempt(async () => {
    if (await saveIfChanged()) showVersions((await api(sceneBase())).versions);
    showFlags(await api(`${sceneBase()}/check`, { method: "POST", body: { use_model: true, max_pairs: 6 } }));
    $("studio-flags").scrollIntoView({ block: "nearest" });
  }, { busy: e.currentTarget }));
  const selection = () => {
    const start = text.selectionStart, end = text.selectionEnd;
    if (end <= start) throw new Error("Select some of the scene's text first");
    return { start, end };
  };
  $("studio-rewrite").addEventListener("click", (e) => attempt(async () => {
    const { start, end } = selection();
    await saveIfChanged();
    await operation("rewrite", { start, end, instruction: $("studio-instruction").value }, "Selection rewritten: a new version");
  }, { busy: e.currentTarget }));
  $("studio-restyle").addEventListener("click", (e) => attempt(async () => {
    const tone = $("studio-tone").value.trim();
    if (!tone) throw new Error("Say which tone, e.g. tense");
    const body = { style: { tone } };
    if (text.selectionEnd > text.selectionStart) Object.assign(body, { start: text.selectionStart, end: text.selectionEnd });
    await saveIfChanged();
    await operation("tone", body, `Tone "${tone}" applied: a new version`);
  }, { busy: e.currentTarget }));
  $("studio-compare").addEventListener("click", (e) => attempt(compare, { busy: e.currentTarget }));

  attempt(async () => {
    const wanted = new URL(location.href).searchParams.get("project");
    await loadProjects(wanted);
    if (wanted) await openProject(wanted);
  });
})();
