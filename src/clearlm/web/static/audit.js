// The audit log page: filter the tenant's records, open one, verify the hash chain, export JSONL.
// Record contents (prompts, outputs, errors) are set as text only (clearlm.el / textContent).
"use strict";

(() => {
  const { api, el, say, attempt } = clearlm;
  const $ = (id) => document.getElementById(id);
  const tbody = document.querySelector("#audit-table tbody");
  const PAGE = 50;
  let filters = {};
  let cursor = null;
  let shown = 0;
  let bad = new Set(); // chain positions a verification found bad
  const keyNames = new Map();

  const query = (values) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    return q.toString();
  };
  const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });

  function readFilters() {
    const local = (id) => ($(id).value ? new Date($(id).value).toISOString() : "");
    return {
      since: local("f-since"),
      until: local("f-until"),
      api_key_id: $("f-key").value,
      status: $("f-status").value.trim(),
      endpoint: $("f-endpoint").value.trim(),
    };
  }

  function governanceOf(record) {
    const g = record.governance;
    if (!g) return "";
    const actions = [];
    for (const stage of ["input", "output"]) {
      const s = g[stage];
      const action = Array.isArray(s) ? s.map((x) => x.action).find((a) => a !== "allow") : s?.action;
      if (action && action !== "allow") actions.push(`${stage}: ${action}`);
    }
    if (g.escalated) actions.push("escalated");
    if (g.scan) actions.push(`scan: ${g.scan.action}`);
    return actions.join(", ") || (g.policy ? `${g.policy}: allow` : "");
  }

  function statusBadge(code) {
    const kind = code >= 500 ? "bad" : code >= 400 ? "warn" : "";
    return el("span", { class: `badge ${kind}` }, String(code));
  }

  function row(r) {
    const open = el("button", { type: "button", class: "link mono", onclick: (e) => openRecord(r.request_id, e.currentTarget) }, r.request_id);
    const key = r.api_key_id ? keyNames.get(r.api_key_id) || r.api_key_id : "—";
    return el(
      "tr", { dataset: { chainSeq: r.chain_seq }, class: bad.has(r.chain_seq) ? "tampered" : "" },
      el("td", {}, String(r.chain_seq)),
      el("td", {}, el("time", { datetime: r.created_at }, when(r.created_at))),
      el("td", {}, open),
      el("td", { class: "mono" }, r.endpoint),
      el("td", {}, key),
      el("td", {}, statusBadge(r.status_code)),
      el("td", {}, governanceOf(r)),
      el("td", { class: "num" }, r.latency_ms !== undefined ? `${Math.round(r.latency_ms)} ms` : ""),
    );
  }

  async function load(reset) {
    const params = { ...filters, order: "desc", limit: PAGE };
    if (!reset && cursor !== null) params.before = cursor;
    const page = await api("/v1/audit?" + query(params));
    if (reset) {
      tbody.replaceChildren();
      shown = 0;
    }
    tbody.append(...page.data.map(row));
    shown += page.data.length;
    cursor = page.data.length ? page.data[page.data.length - 1].chain_seq : cursor;
    $("more").hidden = !page.has_more;
    $("audit-empty").hidden = shown > 0;
    $("audit-count").textContent = `${shown} record${shown === 1 ? "" : "s"} shown${page.has_more ? " (more below)" : ""}`;
    $("export").href = "/v1/audit/export?" + query(filters);
  }

  // ---- one record ----

  function block(title, value) {
    let body;
    if (value === null || value === undefined || value === "") body = el("p", { class: "muted" }, "none");
    else if (Array.isArray(value) && value.every((m) => m && typeof m === "object" && "role" in m)) {
      body = el("div", { class: "messages" }, value.map((m) =>
        el("div", { class: "message" }, el("span", { class: "badge" }, m.role), el("pre", {}, String(m.content ?? "")))));
    } else body = el("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
    return el("section", { class: "record-part" }, el("h3", {}, title), body);
  }

  // A record's governance: each scanner that found something, per stage, then anything else it noted.
  function governanceView(g) {
    if (!g) return block("Governance findings", null);
    const stages = [];
    if (g.input) stages.push(["input", g.input]);
    for (const o of g.output || []) stages.push([`output${o.choice ? ` (choice ${o.choice})` : ""}`, o]);
    const rows = [];
    for (const [stage, decision] of stages) {
      for (const r of decision.results || []) {
        const where = r.message !== undefined ? ` · message ${r.message}` : r.target ? " · target" : "";
        const found = (r.findings || []).map((f) => `${f.type} ${f.end > f.start ? `[${f.start}–${f.end}]` : ""} ${f.score}`).join("; ");
        rows.push(el("tr", {}, el("td", {}, stage + where), el("td", {}, r.scanner),
          el("td", {}, el("span", { class: `badge act-${r.action}` }, r.action)), el("td", {}, String(r.risk)), el("td", {}, found)));
      }
    }
    const summary = el("p", {}, `Policy ${g.policy || "—"}`,
      ...stages.map(([stage, d]) => `; ${stage}: ${d.action}`), g.escalated ? "; escalated for review" : "");
    const parts = [summary];
    if (rows.length) {
      parts.push(el("table", { class: "gov-findings" },
        el("thead", {}, el("tr", {}, ["Stage", "Scanner", "Action", "Risk", "Findings (type [span] score)"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows)));
    }
    const rest = Object.fromEntries(Object.entries(g).filter(([k]) => !["policy", "input", "output", "escalated"].includes(k)));
    if (Object.keys(rest).length) parts.push(el("pre", {}, JSON.stringify(rest, null, 2)));
    return el("section", { class: "record-part" }, el("h3", {}, "Governance findings"), ...parts);
  }

  function details(r) {
    const facts = [
      ["Request id", r.request_id], ["Time", `${when(r.created_at)} (${r.created_at})`], ["Endpoint", r.endpoint],
      ["Key", r.api_key_id ? `${keyNames.get(r.api_key_id) || ""} ${r.api_key_id}`.trim() : "none (open access)"],
      ["Model", r.model || "—"], ["Status", String(r.status_code)], ["Finish reason", r.finish_reason || "—"],
      ["Tokens", `${r.prompt_tokens ?? 0} in, ${r.completion_tokens ?? 0} out`],
      ["Latency", r.latency_ms !== undefined ? `${Math.round(r.latency_ms)} ms` : "—"], ["Tenant", r.tenant],
    ];
    const dl = el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const parts = [dl];
    if (r.unreadable) parts.push(el("p", { class: "error" }, r.unreadable));
    if (r.error) parts.push(el("p", { class: "error" }, "Error: ", r.error));
    parts.push(block("Prompt", r.prompt), block("Output", r.output), governanceView(r.governance), block("Parameters", r.parameters));
    parts.push(el(
      "section", { class: "record-part" }, el("h3", {}, "Hash chain"),
      el("dl", { class: "facts hashes" },
        el("dt", {}, "Position"), el("dd", {}, `#${r.chain_seq}`),
        el("dt", {}, "Previous hash"), el("dd", {}, el("code", {}, r.prev_hash)),
        el("dt", {}, "Hash"), el("dd", {}, el("code", {}, r.hash))),
    ));
    return parts;
  }

  let opener = null;
  async function openRecord(requestId, button) {
    await attempt(async () => {
      const r = await api("/v1/audit/" + encodeURIComponent(requestId));
      $("record-title").textContent = `Record #${r.chain_seq}`;
      $("record-body").replaceChildren(...details(r));
      opener = button;
      $("record-dialog").showModal();
      $("record-close").focus();
    });
  }
  $("record-close").addEventListener("click", () => $("record-dialog").close());
  $("record-dialog").addEventListener("close", () => opener?.focus());

  // ---- verification ----

  $("verify").addEventListener("click", (event) => attempt(async () => {
    const v = await api("/v1/audit/verify", { method: "POST" });
    const box = $("verify-result");
    box.hidden = false;
    bad = new Set(v.problems.map((p) => p.chain_seq));
    for (const tr of tbody.rows) tr.classList.toggle("tampered", bad.has(Number(tr.dataset.chainSeq)));
    if (v.ok) {
      box.className = "verify ok-box";
      box.replaceChildren(
        el("strong", {}, "Chain verified"),
        `: ${v.records} record${v.records === 1 ? "" : "s"} of tenant ${v.tenant} hash correctly and the head's signature checks out.`,
        v.head ? el("span", { class: "head" }, " Head: #", String(v.head.chain_seq), " ", el("code", {}, v.head.hash)) : "",
        el("span", { class: "head muted" }, " Signing key: ", el("code", {}, v.public_key || "none")),
      );
    } else {
      const f = v.first_bad;
      box.className = "verify bad-box";
      box.replaceChildren(
        el("strong", {}, "Chain broken"),
        `: the first bad record is #${f.chain_seq}${f.request_id ? ` (${f.request_id})` : ""}: ${f.message}.`,
        v.problems.length > 1 ? ` ${v.problems.length} problems in all.` : "",
      );
    }
  }, { busy: event.currentTarget }));

  // ---- filters ----

  $("audit-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    filters = readFilters();
    cursor = null;
    attempt(() => load(true), { busy: event.submitter });
  });
  $("audit-filters").addEventListener("reset", () => {
    filters = {};
    cursor = null;
    setTimeout(() => attempt(() => load(true)), 0);
  });
  $("more").addEventListener("click", (event) => attempt(() => load(false), { busy: event.currentTarget }));

  async function keys() {
    try {
      const list = await api("/v1/keys");
      for (const k of list.data) {
        keyNames.set(k.id, k.name);
        $("f-key").append(el("option", { value: k.id }, `${k.name} (${k.id})${k.revoked_at ? ", revoked" : ""}`));
      }
    } catch (e) {
      say(e.message, { error: true });
    }
  }

  attempt(async () => {
    await keys();
    await load(true);
  });
})();
