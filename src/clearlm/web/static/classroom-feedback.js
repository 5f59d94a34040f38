// clearlm classroom: a learner's released grades (/v1/classroom/learners/{learner}/grades), each with its
// question, score, and per criterion the level, points, feedback and the evidence spans highlighted in the
// learner's answer. Used by /classroom/feedback (the learner's own page, booted below) and by the teacher's
// page of a learner (classroom-learner.js calls classroomFeedback.render). Text only: nothing a learner or a
// model wrote is parsed as HTML.
"use strict";

const classroomFeedback = (() => {
  const { el } = clearlm;
  const signed = (x) => `${x > 0 ? "+" : x < 0 ? "−" : "±"}${Math.abs(x).toFixed(2)}`;

  // Where a span is in the answer: at its offsets if the answer still has it there, else found by text.
  function locate(answer, span) {
    if (answer.slice(span.start, span.end) === span.text) return [span.start, span.end];
    const at = span.text ? answer.indexOf(span.text) : -1;
    return at < 0 ? null : [at, at + span.text.length];
  }

  // The answer with one criterion's evidence marked: earned points (up) or cost points (down).
  function highlighted(answer, evidence) {
    const spans = evidence.map((s) => ({ s, at: locate(answer, s) })).filter((x) => x.at)
      .sort((a, b) => a.at[0] - b.at[0]);
    const parts = [];
    let pos = 0;
    for (const { s, at } of spans) {
      if (at[0] < pos) continue;
      parts.push(answer.slice(pos, at[0]));
      const label = `${signed(s.effect)} points`;
      parts.push(el("mark", { class: s.effect >= 0 ? "up" : "down", dataset: { effect: String(s.effect) } },
        answer.slice(at[0], at[1]), el("span", { class: "effect" }, ` (${label})`)));
      pos = at[1];
    }
    parts.push(answer.slice(pos));
    return el("blockquote", { class: "answer evidence" }, ...parts);
  }

  function criterion(grade, c) {
    return el("section", { class: "criterion", dataset: { criterion: c.criterion_id } },
      el("h4", {}, c.description || c.criterion_id, " ",
        el("span", { class: "points" }, `${c.points} of ${c.max_points} point${c.max_points === 1 ? "" : "s"}`),
        c.changed_by_teacher ? el("span", { class: "badge" }, "set by your teacher") : ""),
      el("p", { class: "level" }, el("strong", {}, "Level: "), c.level),
      el("p", { class: "criterion-feedback" }, el("strong", {}, "Feedback: "), c.feedback),
      c.evidence.length
        ? [el("p", { class: "muted small" }, "What in your answer counted for this:"), highlighted(grade.answer, c.evidence)]
        : el("p", { class: "muted small" }, "No part of your answer stood out for this criterion."));
  }

  function card(grade) {
    const headingId = `grade-${grade.id}`;
    return el("article", { class: "card grade-feedback", dataset: { id: grade.id, status: grade.status }, "aria-labelledby": headingId },
      el("h3", { id: headingId }, grade.question || grade.rubric_id),
      el("p", { class: "row meta" },
        el("span", { class: "score" }, `Score ${grade.score} of ${grade.max_score}`),
        el("span", { class: "muted" }, `${grade.points} of ${grade.max_points} points · ${grade.subject} · ${new Date(grade.created_at).toLocaleDateString()}`),
        grade.changed_by_teacher ? el("span", { class: "badge" }, "reviewed by your teacher")
          : grade.status === "accepted" ? el("span", { class: "badge" }, "checked by your teacher") : ""),
      grade.instructions_removed
        ? el("p", { class: "small" }, el("span", { class: "badge warn" }, "note"),
            " Instructions to the grader were found in your answer and ignored.")
        : "",
      ...grade.criteria.map((c) => criterion(grade, c)));
  }

  // Fill `list` with the grades (an empty note when there are none).
  function render(list, grades, empty = "No graded answer yet.") {
    list.replaceChildren(...(grades.length ? grades.map(card) : [el("p", { class: "muted" }, empty)]));
  }

  const page = document.getElementById("feedback-page");
  if (page) {
    const learner = page.dataset.learner;
    clearlm.attempt(async () => {
      const { data } = await clearlm.api(`/v1/classroom/learners/${encodeURIComponent(learner)}/grades`);
      document.getElementById("feedback-count").textContent =
        data.length ? `${data.length} graded answer${data.length === 1 ? "" : "s"}` : "";
      render(document.getElementById("feedback-grades"), data,
        "No graded answer yet: a grade appears here once it is released (some are checked by your teacher first).");
    });
  }

  return { render, highlighted, locate };
})();
