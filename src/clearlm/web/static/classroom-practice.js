// /classroom/practice: the tutor's next question, hints one at a time, the answer checked with feedback,
// and the learner's mastery and reviews, all through /v1/classroom (server.classroom); the chat tutor
// (server.classroom_tutor) answers from the course's notes with citations (citations.js), and gives a hint
// instead of the open question's answer (the hint then counts as used).
"use strict";

(() => {
  const { api, el, say, attempt } = clearlm;
  const { pct, renderSkills } = classroomUI;
  const $ = (id) => document.getElementById(id);
  const learner = $("practice").dataset.learner;
  let courses = [];
  let course = null;
  let item = null;
  let shown = 0; // hints shown for this item
  let started = 0;
  let mastery = null; // the latest P(mastery) per skill
  let answered = false; // the item on the page was answered (its solution is shown: no longer open)

  const base = () =>
    `/v1/classroom/courses/${encodeURIComponent(course.id)}/learners/${encodeURIComponent(learner)}`;
  const skillName = (id) => course.skills.find((s) => s.id === id)?.name || id;
  const when = (iso) => new Date(iso).toLocaleString();

  async function loadProgress(before = null) {
    const progress = await api(base() + "/progress");
    mastery = progress.mastery;
    $("threshold").textContent =
      `A skill counts as mastered once P(mastery) reaches ${(course.mastery_threshold * 100).toFixed(0)}% (Bayesian Knowledge Tracing).`;
    renderSkills($("skills"), course, progress.mastery, before);
    const now = Date.now();
    $("reviews").replaceChildren(
      ...(progress.reviews.length
        ? progress.reviews.map((r) => {
            const due = new Date(r.due).getTime() <= now;
            return el("li", { dataset: { item: r.item_id } },
              el("span", { class: "mono" }, r.item_id), " ",
              due ? el("span", { class: "badge warn" }, "due now") : `due ${when(r.due)}`);
          })
        : [el("li", { class: "muted" }, "No review scheduled yet.")]));
  }

  function showHints() {
    const total = item.hints.length;
    $("hint").disabled = shown >= total;
    $("hint-count").textContent = total
      ? `${shown} of ${total} hint${total === 1 ? "" : "s"} used`
      : "No hint for this question";
  }

  // One exchange with the tutor: the question, the reply (its [n] markers made buttons by citations.js and
  // its sources listed), or the hint given instead of the answer.
  function tutorTurn(turn) {
    const answer = el("article", { class: "tutor-answer", dataset: { role: "assistant" } },
      el("div", { class: "msg-body" }, turn.reply));
    const node = el("div", { class: `tutor-turn${turn.leaked ? " nudge" : ""}`, dataset: { id: turn.id, leaked: String(turn.leaked) } },
      el("p", { class: "asked" }, el("span", { class: "sr-only" }, "You asked: "), turn.question),
      turn.leaked ? el("span", { class: "badge warn" }, "a hint instead of the answer") : null,
      answer);
    if (turn.citations) window.clearlmCitations?.render(answer, turn.citations);
    return node;
  }

  async function loadTutor() {
    $("tutor").hidden = !course.knowledge_base;
    $("tutor-log").replaceChildren();
    if (!course.knowledge_base) return;
    $("tutor-kb").textContent = course.knowledge_base;
    const { data } = await api(base() + "/chat?limit=20");
    $("tutor-log").append(...data.map(tutorTurn));
  }

  async function loadNext() {
    const next = await api(base() + "/next");
    item = next.item;
    shown = 0;
    answered = false;
    $("hints").replaceChildren();
    $("feedback").replaceChildren();
    $("next").hidden = true;
    $("all-done").hidden = item !== null;
    $("answer-form").hidden = item === null;
    $("item-question").textContent = item ? item.question : "";
    $("item-reason").textContent = !item ? ""
      : next.reason === "review" ? `A review, due since ${when(next.due)}`
      : `Practising: ${skillName(next.skill)}`;
    if (!item) return;
    $("item-question").dataset.item = item.id;
    $("answer").value = "";
    $("answer").disabled = false;
    $("check").disabled = false;
    showHints();
    started = performance.now();
    $("answer").focus();
  }

  async function choose(id) {
    course = courses.find((c) => c.id === id) || courses[0];
    const url = new URL(location.href);
    url.searchParams.set("course", course.id);
    history.replaceState(null, "", url);
    await loadProgress();
    await loadNext();
    await loadTutor();
  }

  $("hint").addEventListener("click", () => {
    if (!item || shown >= item.hints.length) return;
    $("hints").append(el("li", {}, item.hints[shown]));
    shown += 1;
    showHints();
    if (shown >= item.hints.length) $("answer").focus();
  });

  $("answer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const answer = $("answer").value.trim();
    if (!answer) {
      say("Write an answer first", { error: true });
      return;
    }
    attempt(async () => {
      const before = mastery;
      const seconds = Math.round((performance.now() - started) / 100) / 10;
      const result = await api(base() + "/attempts", {
        method: "POST",
        body: { item_id: item.id, answer, hints_used: shown, seconds },
      });
      answered = true;
      $("answer").disabled = true;
      $("hint").disabled = true;
      const box = $("feedback");
      box.className = result.correct ? "feedback right" : "feedback wrong";
      box.replaceChildren(...[
        result.correct
          ? el("p", {}, el("strong", {}, "Right. "),
              shown ? "You used a hint, so it counts as practice, not yet as mastery." : "")
          : el("p", {}, el("strong", {}, "Not quite. "), "The answer is ", el("span", { class: "mono" }, result.expected), "."),
        result.correct ? null : el("p", {}, el("strong", {}, "Worked solution: "), result.solution),
        el("p", { class: "moved" }, "Mastery now: ", item.skills.map((s) => {
          const p = result.mastery[s];
          const moved = before ? (p - before[s]) * 100 : 0;
          return `${skillName(s)} ${pct(p)} (${moved >= 0 ? "+" : "−"}${Math.abs(moved).toFixed(1)} points)`;
        }).join("; "), "."),
      ].filter(Boolean));
      $("next").hidden = false;
      await loadProgress(before);
      $("next").focus();
    }, { busy: $("check") });
  });

  $("tutor-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("tutor-question").value.trim();
    if (!question) {
      say("Write a question first", { error: true });
      return;
    }
    attempt(async () => {
      const body = { question, hints_seen: shown };
      if (item && !answered) body.item_id = item.id;
      const turn = await api(base() + "/chat", { method: "POST", body });
      const node = tutorTurn(turn);
      $("tutor-log").append(node);
      $("tutor-question").value = "";
      if (turn.leaked && turn.hint_index !== null && item && !answered && turn.item_id === item.id) {
        while (shown <= turn.hint_index && shown < item.hints.length) {
          $("hints").append(el("li", {}, item.hints[shown]));
          shown += 1;
        }
        showHints();
      }
      node.scrollIntoView({ block: "nearest" });
    }, { busy: $("tutor-ask") });
  });

  $("next").addEventListener("click", () => attempt(loadNext, { busy: $("next") }));
  $("course").addEventListener("change", (e) => attempt(() => choose(e.target.value)));

  attempt(async () => {
    courses = (await api("/v1/classroom/courses")).data;
    if (!courses.length) {
      $("no-courses").hidden = false;
      $("course").disabled = true;
      return;
    }
    $("course").replaceChildren(...courses.map((c) => el("option", { value: c.id }, c.title)));
    const wanted = new URL(location.href).searchParams.get("course");
    if (courses.some((c) => c.id === wanted)) $("course").value = wanted;
    await choose($("course").value);
  });
})();
