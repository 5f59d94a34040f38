// clearlm web UI: the knowledge pages. /knowledge lists and creates knowledge bases; /knowledge/NAME uploads
// files (XMLHttpRequest, for its upload progress), lists and removes them, browses chunks, and searches.
// Everything shown from a document is text (clearlm.el / textContent), never HTML.
"use strict";

(() => {
  const { api, el, say, attempt } = clearlm;
  const kbPath = (name) => "/v1/kb/" + encodeURIComponent(name);

  function bytes(n) {
    if (n === null || n === undefined) return "–";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function when(iso) {
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  // ---- /knowledge: the list, and the create form

  async function loadList() {
    const body = document.querySelector("#kb-table tbody");
    const { data } = await api("/v1/kb");
    body.replaceChildren(
      ...(data.length
        ? data.map((kb) =>
            el("tr", {},
              el("td", {}, el("a", { href: "/knowledge/" + encodeURIComponent(kb.id) }, kb.id)),
              el("td", {}, String(kb.files)),
              el("td", {}, String(kb.chunks))))
        : [el("tr", {}, el("td", { colspan: 3, class: "muted" }, "None yet: create one."))]),
    );
  }

  function setupList() {
    attempt(loadList);
    const form = document.getElementById("kb-create");
    const error = document.getElementById("kb-create-error");
    const fields = ["kb-name", "kb-chunk", "kb-overlap"].map((id) => document.getElementById(id));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      error.textContent = "";
      fields.forEach((f) => f.removeAttribute("aria-invalid"));
      const [name, chunk, overlap] = fields;
      const body = { name: name.value.trim() };
      if (chunk.value !== "") body.chunk_tokens = Number(chunk.value);
      if (overlap.value !== "") body.overlap = Number(overlap.value);
      attempt(async () => {
        try {
          const kb = await api("/v1/kb", { method: "POST", body });
          location.href = "/knowledge/" + encodeURIComponent(kb.id);
        } catch (e) {
          // the server's message names the field; mark that one
          error.textContent = e.message;
          const bad = /chunk/i.test(e.message) ? chunk : /overlap/i.test(e.message) ? overlap : name;
          bad.setAttribute("aria-invalid", "true");
          bad.focus();
        }
      }, { busy: form.querySelector("button[type=submit]") });
    });
  }

  // ---- /knowledge/NAME

  function setupBase(root) {
    const name = root.dataset.kb;
    const chunkState = { file: "", offset: 0, limit: 10, total: 0 };

    // -- files

    async function loadFiles() {
      const page = await api(kbPath(name) + "/files?limit=1000");
      const tbody = document.querySelector("#files tbody");
      const select = document.getElementById("chunk-file");
      const chosen = select.value;
      tbody.replaceChildren(
        ...(page.data.length ? page.data.map(fileRow) : [
          el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No files yet: add some above.")),
        ]),
      );
      select.replaceChildren(
        el("option", { value: "" }, "All files"),
        ...page.data.map((f) => el("option", { value: f.filename }, f.filename)),
      );
      select.value = page.data.some((f) => f.filename === chosen) ? chosen : "";
      const chunks = page.data.reduce((n, f) => n + f.chunks, 0);
      document.getElementById("kb-counts").textContent = `${page.total} files, ${chunks} chunks`;
    }

    function fileRow(f) {
      const browse = el("button", { type: "button", onclick: () => showChunksOf(f.filename) }, "Chunks");
      browse.setAttribute("aria-label", "Chunks of " + f.filename);
      const cells = [browse];
      if (f.uploaded) {
        const remove = el("button", { type: "button", class: "danger" }, "Remove");
        remove.setAttribute("aria-label", "Remove " + f.filename);
        remove.addEventListener("click", () => removeFile(f.filename, remove));
        cells.push(" ", remove);
      }
      return el("tr", { dataset: { file: f.filename } },
        el("td", {}, el("span", { class: "filename" }, f.filename),
          f.title && f.title !== f.filename ? el("div", { class: "muted small" }, f.title) : null),
        el("td", {}, f.kind),
        el("td", {}, bytes(f.bytes)),
        el("td", {}, String(f.chunks)),
        el("td", {}, when(f.added_at)),
        el("td", { class: "actions" }, ...cells));
    }

    function removeFile(filename, button) {
      if (!confirm(`Remove ${filename} and its chunks from ${name}?`)) return;
      attempt(async () => {
        await api(kbPath(name) + "/files/" + encodeURIComponent(filename), { method: "DELETE" });
        say(`Removed ${filename}`);
        await refresh();
      }, { busy: button });
    }

    // -- chunks

    function showChunksOf(filename, scroll = true) {
      document.getElementById("chunk-file").value = filename;
      chunkState.file = filename;
      chunkState.offset = 0;
      attempt(loadChunks);
      if (scroll) document.getElementById("chunks-title").scrollIntoView({ block: "start" });
    }

    async function loadChunks() {
      const q = new URLSearchParams({ offset: chunkState.offset, limit: chunkState.limit });
      if (chunkState.file) q.set("file", chunkState.file);
      const page = await api(kbPath(name) + "/chunks?" + q);
      chunkState.total = page.total;
      const list = document.getElementById("chunks");
      list.start = page.offset + 1;
      list.replaceChildren(...page.data.map(chunkItem));
      const first = page.total ? page.offset + 1 : 0;
      document.getElementById("chunk-range").textContent =
        `${first}–${page.offset + page.data.length} of ${page.total}`;
      document.getElementById("chunk-prev").disabled = page.offset === 0;
      document.getElementById("chunk-next").disabled = !page.has_more;
    }

    function chunkItem(c) {
      return el("li", { class: "chunk", dataset: { chunkId: c.chunk_id } },
        el("div", { class: "chunk-head" },
          el("span", { class: "filename" }, c.path),
          el("span", { class: "muted" }, ` · chunk ${c.ordinal + 1}`),
          c.heading_path.length ? el("span", { class: "heading" }, " · " + c.heading_path.join(" › ")) : null,
          el("span", { class: "muted small" }, ` · characters ${c.start}–${c.end} · id ${c.chunk_id}`)),
        el("div", { class: "chunk-text" }, c.text));
    }

    // -- uploads

    const uploads = document.getElementById("uploads");
    const input = document.getElementById("file-input");
    let queue = Promise.resolve();

    const maxBytes = Number(root.dataset.maxMib) * 1024 * 1024;

    function enqueue(fileList) {
      for (const file of Array.from(fileList)) {
        const row = uploadRow(file);
        uploads.append(row.item);
        if (file.size > maxBytes) {  // the server would skip it too: spare the transfer
          finish(row, "skipped", `skipped: too large: a file is at most ${root.dataset.maxMib} MiB; split it`);
          continue;
        }
        queue = queue.then(() => send(file, row)).catch(() => {});
      }
      queue = queue.then(() => attempt(refresh));
    }

    function uploadRow(file) {
      const bar = el("progress", { max: 100, value: 0, "aria-label": "Uploading " + file.name });
      const state = el("span", { class: "upload-state" }, "waiting");
      const item = el("li", { class: "upload", dataset: { file: file.name } },
        el("span", { class: "filename" }, file.name), el("span", { class: "muted small" }, bytes(file.size)),
        bar, state);
      return { item, bar, state };
    }

    function send(file, row) {
      return new Promise((resolve) => {
        const xhr = new XMLHttpRequest();
        const form = new FormData();
        form.append("files", file, file.name);
        xhr.open("POST", kbPath(name) + "/upload");
        xhr.setRequestHeader("X-CSRF-Token", clearlm.csrf());
        xhr.responseType = "json";
        row.state.textContent = "uploading";
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) row.bar.value = Math.round((100 * e.loaded) / e.total);
        };
        xhr.upload.onload = () => {
          row.bar.value = 100;
          row.state.textContent = "reading and indexing";
        };
        xhr.onload = () => {
          if (xhr.status === 401) {
            location.href = "/signin?next=" + encodeURIComponent(location.pathname);
            return resolve();
          }
          const body = xhr.response;
          if (xhr.status !== 200) {
            const message = body?.error?.message || `${xhr.status} ${xhr.statusText}`;
            finish(row, "failed", message);
            say(`${file.name}: ${message}`, { error: true });
          } else {
            const r = body.files[0];
            if (r.status === "skipped") finish(row, "skipped", `skipped: ${r.reason}`);
            else finish(row, r.status, `${r.status} · ${r.chunks} chunk${r.chunks === 1 ? "" : "s"}`);
          }
          resolve();
        };
        xhr.onerror = () => {
          finish(row, "failed", "the upload failed: check the connection and try again");
          resolve();
        };
        xhr.send(form);
      });
    }

    function finish(row, status, text) {
      row.item.dataset.status = status;
      row.item.classList.add(status);
      row.bar.hidden = true;
      row.state.textContent = text;
    }

    const drop = document.getElementById("drop");
    document.getElementById("choose").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      enqueue(input.files);
      input.value = "";
    });
    drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer?.files?.length) enqueue(e.dataTransfer.files);
    });

    // -- search

    const SCORE = { hybrid: "RRF score", vector: "cosine", bm25: "BM25" };
    const mmrOn = document.getElementById("mmr-on");
    const mmr = document.getElementById("mmr");
    mmrOn.addEventListener("change", () => (mmr.disabled = !mmrOn.checked));
    document.getElementById("search").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.target;
      const body = {
        query: document.getElementById("q").value,
        mode: document.getElementById("mode").value,
        k: Number(document.getElementById("k").value || 5),
      };
      if (mmrOn.checked) body.mmr = Number(mmr.value);
      const out = document.getElementById("search-results");
      attempt(async () => {
        try {
          const r = await api(kbPath(name) + "/search", { method: "POST", body });
          out.replaceChildren(...r.warnings.map((w) => el("p", { class: "badge warn" }, w)),
            r.data.length ? el("ol", { class: "hits" }, ...r.data.map((h) => hit(h, r.mode)))
              : el("p", { class: "muted" }, "No passage matched."));
        } catch (e) {
          out.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
        }
      }, { busy: form.querySelector("button[type=submit]") });
    });

    function hit(h, mode) {
      const ranks = Object.entries(h.ranks).map(([k, v]) => `${k} #${v}`).join(", ");
      return el("li", { class: "hit" },
        el("div", { class: "chunk-head" },
          el("span", { class: "score" }, `${SCORE[mode]} ${h.score.toFixed(mode === "hybrid" ? 4 : 3)}`),
          ranks ? el("span", { class: "muted small" }, ` (${ranks})`) : null,
          el("span", { class: "filename" }, " · " + h.path),
          h.heading_path.length ? el("span", { class: "heading" }, " · " + h.heading_path.join(" › ")) : null),
        el("div", { class: "chunk-text" }, h.text));
    }

    async function refresh() {
      await loadFiles();
      await loadChunks();
    }

    document.getElementById("chunk-file").addEventListener("change", (e) => showChunksOf(e.target.value, false));
    document.getElementById("chunk-prev").addEventListener("click", () => {
      chunkState.offset = Math.max(0, chunkState.offset - chunkState.limit);
      attempt(loadChunks);
    });
    document.getElementById("chunk-next").addEventListener("click", () => {
      chunkState.offset += chunkState.limit;
      attempt(loadChunks);
    });
    attempt(refresh);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("kb");
    if (root) setupBase(root);
    else if (document.getElementById("kb-create")) setupList();
  });
})();
