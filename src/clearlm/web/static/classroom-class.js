// /classroom/class (admins): the class's mastery heatmap from /v1/classroom/courses/{course}/mastery:
// a row per learner, a column per skill, each cell P(mastery) as a number AND a colour band; sortable by
// any column (its header's button); each learner links to their attempts.
"use strict";

(() => {
  const { api, el, attempt } = clearlm;
  const { pct, band } = classroomUI;
  const $ = (id) => document.getElementById(id);
  const names = JSON.parse($("class").dataset.names || "{}"); // key id -> key name
  let courses = [];
  let data = null;
  let sort = { key: "learner", dir: 1 }; // key: "learner", "attempts" or a skill id

  const label = (row) => (names[row.learner] ? `${names[row.learner]} (${row.learner})` : row.learner);
  const value = (row, key) =>
    key === "learner" ? label(row) : key === "attempts" ? row.attempts : row.mastery[key];

  function header(key, text) {
    const active = sort.key === key;
    const arrow = active ? (sort.dir > 0 ? " ▲" : " ▼") : "";
    return el("th", { scope: "col", "aria-sort": active ? (sort.dir > 0 ? "ascending" : "descending") : null },
      el("button", { type: "button", class: "sort", dataset: { key },
                     onclick: () => { sortBy(key); $("heat-head").querySelector(`[data-key="${CSS.escape(key)}"]`).focus(); } },
        text, el("span", { "aria-hidden": "true" }, arrow)));
  }

  function sortBy(key) {
    // learners A to Z first; numbers high to low first (who needs help: sort again for low to high)
    sort = sort.key === key ? { key, dir: -sort.dir } : { key, dir: key === "learner" ? 1 : -1 };
    draw();
  }

  function draw() {
    const threshold = data.mastery_threshold;
    const rows = [...data.learners].sort((a, b) => {
      const x = value(a, sort.key), y = value(b, sort.key);
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return sort.dir * order || a.learner.localeCompare(b.learner);
    });
    $("heat-head").replaceChildren(
      header("learner", "Learner"), ...data.skills.map((s) => header(s.id, s.name)), header("attempts", "Attempts"));
    $("heat-body").replaceChildren(...rows.map((row) => el("tr", { dataset: { learner: row.learner } },
      el("th", { scope: "row" }, el("a", {
        href: `/classroom/class/${encodeURIComponent(data.course)}/learners/${encodeURIComponent(row.learner)}`,
      }, label(row))),
      ...data.skills.map((s) => {
        const p = row.mastery[s.id];
        const mastered = p >= threshold;
        return el("td", { class: `heat heat-${band(p, threshold)}`, dataset: { skill: s.id, p: String(p) } },
          pct(p), mastered ? el("span", { "aria-hidden": "true" }, " ✓") : null,
          mastered ? el("span", { class: "sr-only" }, " mastered") : null);
      }),
      el("td", { class: "num" }, String(row.attempts)))));
    $("heatmap").hidden = rows.length === 0;
    $("heat-empty").hidden = rows.length !== 0;
  }

  async function load(id) {
    const course = courses.find((c) => c.id === id) || courses[0];
    const url = new URL(location.href);
    url.searchParams.set("course", course.id);
    history.replaceState(null, "", url);
    data = await api(`/v1/classroom/courses/${encodeURIComponent(course.id)}/mastery`);
    $("heat-note").textContent =
      `${data.learners.length} learner${data.learners.length === 1 ? "" : "s"}; a skill is mastered at ` +
      `${(data.mastery_threshold * 100).toFixed(0)}% (✓). A skill not practised yet shows its prior.`;
    draw();
  }

  $("course").addEventListener("change", (e) => attempt(() => load(e.target.value)));

  attempt(async () => {
    courses = (await api("/v1/classroom/courses")).data;
    if (!courses.length) {
      $("heat-empty").textContent = "No course is set up yet: put course files (YAML) in the server's classroom folder.";
      $("heat-empty").hidden = false;
      $("course").disabled = true;
      return;
    }
    $("course").replaceChildren(...courses.map((c) => el("option", { value: c.id }, c.title)));
    const wanted = new URL(location.href).searchParams.get("course");
    if (courses.some((c) => c.id === wanted)) $("course").value = wanted;
    await load($("course").value);
  });
})();
