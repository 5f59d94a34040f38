// clearlm classroom pages: what the practice, class and learner pages share (P(mastery) as text and bars).
"use strict";

const classroomUI = (() => {
  const { el } = clearlm;

  // P(mastery) as a percentage with one decimal: 0.625 -> "62.5%".
  const pct = (p) => `${(p * 100).toFixed(1)}%`;

  // The heatmap's colour band of p: 0..4 by fifths below the threshold, 5 at or above it (mastered).
  const band = (p, threshold) => (p >= threshold ? 5 : Math.min(4, Math.floor(p * 5)));

  // A list of skills with a bar, the percentage, the change since `before` and "mastered" at the threshold.
  function renderSkills(list, course, mastery, before = null) {
    list.replaceChildren(
      ...course.skills.map((skill) => {
        const p = mastery[skill.id];
        const id = `skill-${skill.id}`;
        const moved = before && before[skill.id] !== undefined ? p - before[skill.id] : 0;
        const change = Math.abs(moved) >= 0.0005
          ? el("span", { class: moved > 0 ? "move up" : "move down" },
              `${moved > 0 ? "▲ +" : "▼ −"}${(Math.abs(moved) * 100).toFixed(1)} points`)
          : null;
        const mastered = p >= course.mastery_threshold;
        return el("li", { class: "skill", dataset: { skill: skill.id, p: String(p) } },
          el("div", { class: "row" },
            el("span", { id, class: "grow skill-name" }, skill.name),
            el("span", { class: "pct" }, pct(p)),
            change,
            mastered ? el("span", { class: "badge mastered" }, "mastered") : null),
          el("progress", { max: "100", value: (p * 100).toFixed(1), "aria-labelledby": id,
                           "aria-valuetext": `${pct(p)}${mastered ? ", mastered" : ""}` }));
      }));
  }

  return { pct, band, renderSkills };
})();
