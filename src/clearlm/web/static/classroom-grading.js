// clearlm grading page (/classroom/grading): lists grades from /v1/classroom/grades, highlights each
// criterion's evidence spans in the answer, posts accept / override decisions. Every text a learner or a
// model wrote is set as text (clearlm.el), never parsed as HTML.
"use strict";

(() => {
  const { api, attempt, say, el } = clearlm;
  const $ = (id) => document.getElementById(id);
  const list = $("grading-items");
  const status = $("grading-status");
  const rubric = $("grading-rubric");
  const exportLink = $("grading-export");
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  const signed = (x) => `${x > 0 ? "+" : x < 0 ? "−" : "±"}${Math.abs(x).toFixed(2)}`;

  async function load() {
    const params = new URLSearchParams();
    if (status.value) params.set("status", status.value);
    if (rubric.value) params.set("rubric", rubric.value);
    exportLink.hidden = !rubric.value;
    exportLink.href = rubric.value ? `/v1/classroom/grades.csv?rubric=${encodeURIComponent(rubric.value)}` : "#";
    const { data } = await api(`/v1/classroom/grades?${params}`);
    $("grading-count").textContent = data.length ? `${data.length} grade${data.length === 1 ? "" : "s"}` : "";
    const empty = status.value === "in_review" ? "No grade waits for a teacher." : "No grades.";
    list.replaceChildren(...(data.length ? data.map(card) : [el("p", { class: "card muted" }, empty)]));
  }

  // Where a span is in the answer: at its offsets if the stored answer still has it there, else found.
  function locate(answer, span) {
    if (answer.slice(span.start, span.end) === span.text) return [span.start, span.end];
    const at = span.text ? answer.indexOf(span.text) : -1;
    return at < 0 ? null : [at, at + span.text.length];
  }

  // The answer with one criterion's evidence marked (overlapping spans: the first kept).
  function highlighted(answer, evidence) {
    const spans = evidence.map((s) => ({ s, at: locate(answer, s) })).filter((x) => x.at).sort((a, b) => a.at[0] - b.at[0]);
    const parts = [];
    let pos = 0;
    for (const { s, at } of spans) {
      if (at[0] < pos) continue;
      parts.push(answer.slice(pos, at[0]));
      const label = `${signed(s.effect)} points`;
      parts.push(el("mark", { class: s.effect >= 0 ? "up" : "down", title: `effect on this criterion: ${label}` },
        answer.slice(at[0], at[1]), el("span", { class: "effect" }, `(${label})`)));
      pos = at[1];
    }
    parts.push(answer.slice(pos));
    return el("div", { class: "answer" }, ...parts);
  }

  function criterion(grade, c) {
    const missing = c.evidence.filter((s) => !locate(grade.answer, s));
    return el("section", { class: "criterion", dataset: { criterion: c.criterion_id } },
      el("h3", {}, `${c.criterion_id}: ${c.points} point${c.points === 1 ? "" : "s"}`,
        c.expected_points !== undefined ? el("span", { class: "muted small" }, ` (expected ${c.expected_points.toFixed(2)})`) : ""),
      el("p", { class: "small" }, c.feedback),
      c.evidence.length ? highlighted(grade.answer, c.evidence) : el("p", { class: "muted small" }, "No evidence spans."),
      missing.length ? el("ul", { class: "small" }, ...missing.map((s) => el("li", {}, `${signed(s.effect)} points: `, s.text))) : "");
  }

  function decided(grade) {
    const d = grade.decision || {};
    return el("div", { class: "decided" },
      el("p", {}, el("strong", {}, grade.status), ` by ${grade.decided_by || "?"} · ${when(grade.decided_at)}`),
      d.note ? el("p", {}, "Note: ", d.note) : "");
  }

  function actions(grade) {
    const id = grade.id;
    const score = el("select", { id: `score-${id}` }, el("option", { value: "" }, "keep"),
      ...[0, 1, 2].map((s) => el("option", { value: String(s) }, String(s))));
    const points = grade.grade.criteria.map((c) => {
      const levels = Object.keys(c.probabilities || {}).map(Number).sort((a, b) => b - a);
      const select = el("select", { id: `points-${id}-${c.criterion_id}`, dataset: { criterion: c.criterion_id } },
        el("option", { value: "" }, `keep (${c.points})`), ...levels.map((p) => el("option", { value: String(p) }, String(p))));
      return { c, select, field: el("div", {}, el("label", { for: select.id }, `Points for ${c.criterion_id}`), select) };
    });
    const note = el("input", { id: `note-${id}`, type: "text", placeholder: "Why, for the audit record (optional)" });
    const decide = (action) => (e) => attempt(async () => {
      const body = { action };
      if (action === "override") {
        if (score.value !== "") body.score = Number(score.value);
        const criteria = {};
        for (const p of points) if (p.select.value !== "") criteria[p.c.criterion_id] = Number(p.select.value);
        if (Object.keys(criteria).length) body.criteria = criteria;
        if (body.score === undefined && !body.criteria) {
          score.focus();
          throw new Error("Choose a new score or a criterion's points to override");
        }
      }
      if (note.value.trim()) body.note = note.value;
      const done = await api(`/v1/classroom/grades/${encodeURIComponent(id)}/decision`, { method: "POST", body });
      say(`${done.learner} (${done.answer_id}): ${done.status}, score ${done.final_score}`);
      await load();
      (list.querySelector("button") || status).focus();
    }, { busy: e.currentTarget });
    return el("div", { class: "decide" },
      el("div", { class: "points" },
        el("div", {}, el("label", { for: score.id }, "New score"), score),
        ...points.map((p) => p.field)),
      el("label", { for: note.id }, "Note"), note,
      el("div", { class: "row buttons" },
        el("button", { type: "button", class: "primary accept", onclick: decide("accept") }, "Accept"),
        el("button", { type: "button", class: "override", onclick: decide("override") }, "Override")));
  }

  function card(grade) {
    const headingId = `grade-${grade.id}`;
    const g = grade.grade;
    const open = grade.status === "in_review" || grade.status === "released";
    return el("article", { class: "card grade-item", dataset: { id: grade.id, status: grade.status }, "aria-labelledby": headingId },
      el("h2", { id: headingId }, `${grade.learner} · ${grade.answer_id}`),
      el("p", { class: "row meta" },
        el("span", { class: `badge status-${grade.status}` }, grade.status.replace("_", " ")),
        el("span", { class: "score" }, `score ${grade.final_score}`, grade.final_score !== grade.score ? ` (model ${grade.score})` : ""),
        el("span", { class: "muted" }, `confidence ${grade.confidence.toFixed(2)} · ${grade.rubric_id} v${grade.rubric_version} · ${grade.model}`)),
      (g.review_reasons || []).length ? el("ul", { class: "reasons" }, ...g.review_reasons.map((r) => el("li", {}, r))) : "",
      (g.findings || []).length ? el("p", { class: "small" }, el("span", { class: "badge warn" }, "removed"),
        ` ${g.findings.length} instruction${g.findings.length === 1 ? "" : "s"} to the grader: `, g.findings.map((f) => f.text).join(" · ")) : "",
      ...g.criteria.map((c) => criterion(grade, c)),
      open ? actions(grade) : decided(grade));
  }

  status.addEventListener("change", () => attempt(load));
  rubric.addEventListener("change", () => attempt(load));
  $("grading-reload").addEventListener("click", (e) => attempt(load, { busy: e.currentTarget }));
  attempt(load);
})();
