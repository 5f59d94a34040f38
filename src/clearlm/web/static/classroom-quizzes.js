// clearlm quiz page (/classroom/quizzes): generates questions through /v1/classroom/quiz/generate, lists
// them from /v1/classroom/quiz/questions with the cited passage (the quoted sentence marked), posts approve
// (with the question and key as edited) or reject. Every text a model or a document wrote is set as text
// (clearlm.el), never parsed as HTML.
"use strict";

(() => {
  const { api, attempt, say, el } = clearlm;
  const $ = (id) => document.getElementById(id);
  const list = $("quiz-items");
  const status = $("quiz-status");
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

  async function load() {
    const params = new URLSearchParams();
    if (status.value) params.set("status", status.value);
    const { data } = await api(`/v1/classroom/quiz/questions?${params}`);
    $("quiz-count").textContent = data.length ? `${data.length} question${data.length === 1 ? "" : "s"}` : "";
    const empty = status.value === "pending" ? "No question waits for approval." : "No questions.";
    list.replaceChildren(...(data.length ? data.map(card) : [el("p", { class: "card muted" }, empty)]));
  }

  // The cited passage with its quoted sentence marked (found in the passage text; else shown below it).
  function passage(c) {
    const text = c.passage || "";
    const at = c.quote ? text.indexOf(c.quote) : -1;
    if (at < 0) return el("div", { class: "passage" }, text, c.quote ? el("p", {}, el("mark", { class: "quote" }, c.quote)) : "");
    return el("div", { class: "passage" }, text.slice(0, at), el("mark", { class: "quote" }, c.quote), text.slice(at + c.quote.length));
  }

  function source(c) {
    const where = [c.title, c.heading].filter(Boolean).join(" > ");
    return el("p", { class: "muted small source" }, `From ${where || c.path} · ${c.kb} · chunk ${c.chunk_id} · characters ${c.start}-${c.end}`);
  }

  function decided(q) {
    const d = q.decision || {};
    return el("div", { class: "decided" },
      el("p", {}, el("strong", {}, q.status), ` by ${q.decided_by || "?"} · ${when(q.decided_at)}`,
        (d.edited || []).length ? ` · edited: ${d.edited.join(", ")}` : ""),
      d.note ? el("p", {}, "Note: ", d.note) : "",
      q.status === "approved" ? el("p", {}, el("a", { href: `/v1/classroom/quiz/questions/${encodeURIComponent(q.id)}/rubric.yaml` }, "Rubric (YAML)")) : "");
  }

  function actions(q) {
    const id = q.id;
    const question = el("textarea", { id: `question-${id}`, rows: "2", maxlength: "300" });
    question.value = q.question;
    const answer = el("input", { id: `answer-${id}`, type: "text", maxlength: "200", value: q.answer });
    const note = el("input", { id: `note-${id}`, type: "text", placeholder: "Why, for the audit record (optional)" });
    const decide = (action) => (e) => attempt(async () => {
      const body = { action };
      if (action === "approve") {
        if (question.value.trim() !== q.question) body.question = question.value;
        if (answer.value.trim() !== q.answer) body.answer = answer.value;
      }
      if (note.value.trim()) body.note = note.value;
      const done = await api(`/v1/classroom/quiz/questions/${encodeURIComponent(id)}/decision`, { method: "POST", body });
      say(`${done.id}: ${done.status}`);
      await load();
      (list.querySelector("button") || status).focus();
    }, { busy: e.currentTarget });
    return el("div", { class: "decide" },
      el("label", { for: question.id }, "Question"), question,
      el("label", { for: answer.id }, "Answer key"), answer,
      el("label", { for: note.id }, "Note"), note,
      el("div", { class: "row buttons" },
        el("button", { type: "button", class: "primary approve", onclick: decide("approve") }, "Approve"),
        el("button", { type: "button", class: "reject", onclick: decide("reject") }, "Reject")));
  }

  function card(q) {
    const headingId = `quiz-${q.id}`;
    const c = q.citation || {};
    return el("article", { class: "card quiz-item", dataset: { id: q.id, status: q.status }, "aria-labelledby": headingId },
      el("h2", { id: headingId }, q.question),
      el("p", { class: "row meta" },
        el("span", { class: `badge status-${q.status}` }, q.status),
        el("span", { class: "muted" }, `support ${(q.support * 100).toFixed(0)}% · ${q.model} · ${when(q.created_at)}`)),
      el("p", { class: "key" }, el("strong", {}, "Answer key: "), q.answer),
      el("h3", {}, "Cited passage"), source(c), passage(c),
      q.status === "pending" ? actions(q) : decided(q));
  }

  const form = $("quiz-generate");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const kb = $("quiz-kb");
    if (!kb) return;
    const button = form.querySelector("button[type=submit]");
    attempt(async () => {
      $("quiz-run").textContent = "Writing questions…";
      const body = { kb: kb.value, n: Number($("quiz-n").value) };
      if ($("quiz-topic").value.trim()) body.topic = $("quiz-topic").value;
      const run = await api("/v1/classroom/quiz/generate", { method: "POST", body });
      const dropped = Object.entries(run.dropped).map(([k, v]) => `${v} ${k.replace(/_/g, " ")}`).join(", ");
      $("quiz-run").textContent = `${run.kept} question${run.kept === 1 ? "" : "s"} kept from ${run.tried} passage${run.tried === 1 ? "" : "s"}; dropped: ${dropped || "none"}.`;
      status.value = "pending";
      await load();
    }, { busy: button }).finally(() => {
      if ($("quiz-run").textContent === "Writing questions…") $("quiz-run").textContent = "";
    });
  });
  status.addEventListener("change", () => attempt(load));
  $("quiz-reload").addEventListener("click", (e) => attempt(load, { busy: e.currentTarget }));
  attempt(load);
})();
