// /classroom/class/{course}/learners/{learner} (admins): a learner's mastery and attempts, newest first, and
// the graded answers released to them (classroom-feedback.js, as on their own page).
"use strict";

(() => {
  const { api, el, attempt } = clearlm;
  const { renderSkills } = classroomUI;
  const $ = (id) => document.getElementById(id);
  const { course: courseId, learner } = $("learner").dataset;
  const base = `/v1/classroom/courses/${encodeURIComponent(courseId)}/learners/${encodeURIComponent(learner)}`;

  attempt(async () => {
    const course = (await api("/v1/classroom/courses")).data.find((c) => c.id === courseId);
    if (!course) throw new Error(`no course ${courseId}: it may have been removed from the server`);
    const progress = await api(base + "/progress");
    renderSkills($("skills"), course, progress.mastery);
    const attempts = (await api(base + "/attempts")).data;
    $("attempts").hidden = attempts.length === 0;
    $("attempts-empty").hidden = attempts.length !== 0;
    $("attempts-body").replaceChildren(...attempts.map((a) => el("tr", {},
      el("td", {}, a.created_at.slice(0, 19).replace("T", " ")),
      el("td", { class: "mono" }, a.item_id),
      el("td", { class: "answer" }, a.answer),
      el("td", { class: a.correct ? "ok" : "error" }, a.correct ? "right" : "wrong"),
      el("td", { class: "num" }, String(a.hints_used)),
      el("td", { class: "num" }, a.seconds === null ? "–" : a.seconds.toFixed(1)))));
    const grades = (await api(`/v1/classroom/learners/${encodeURIComponent(learner)}/grades`)).data;
    classroomFeedback.render($("learner-grades"), grades, "No released grade for this learner.");
  });
})();
