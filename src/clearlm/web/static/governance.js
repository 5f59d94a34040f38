// The governance page: the policy in force (edit, validate, save), its rules, and the scan playground.
// Everything shown that came from a person or a policy file is set as text (clearlm.el / textContent).
"use strict";

(() => {
  const { api, el, say, attempt } = clearlm;
  const $ = (id) => document.getElementById(id);
  const yamlBox = $("policy-yaml");
  const errorBox = $("policy-error");

  function showError(message) {
    errorBox.hidden = !message;
    errorBox.textContent = message || "";
    if (message) yamlBox.setAttribute("aria-invalid", "true");
    else yamlBox.removeAttribute("aria-invalid");
  }

  // The policy's settings and, per stage, its rules in order.
  function renderRules(policy) {
    const box = $("rules-summary");
    if (!policy.rules) {
      box.replaceChildren(el("p", { class: "muted" }, "No policy is in force: requests pass unscanned."));
      return;
    }
    const r = policy.rules;
    const settings = el(
      "dl",
      { class: "settings" },
      el("dt", {}, "Name"), el("dd", {}, r.name),
      el("dt", {}, "On block"), el("dd", {}, r.on_block === "error" ? "answer HTTP 400" : "answer with the refusal"),
      el("dt", {}, "Refusal"), el("dd", {}, r.refusal),
      el("dt", {}, "Audit log keeps"), el("dd", {}, r.store_redacted ? "text with PII redacted" : "text as sent"),
    );
    const tables = ["input", "output"].map((stage) => {
      const rules = r[stage] || [];
      const title = stage === "input" ? "Input: every prompt message and retrieved passage" : "Output: everything returned";
      if (!rules.length) return el("p", { class: "muted" }, `${title}: no rules.`);
      const rows = rules.map((rule, i) => {
        const { scanner, action, threshold, ...rest } = rule;
        const unused = { salt_env: rest.operator !== "hash", key_env: rest.operator !== "encrypt" };
        const extra = Object.entries(rest)
          .filter(([k, v]) => v !== null && !unused[k] && !(Array.isArray(v) && !v.length))
          .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : v}`)
          .join("; ");
        return el(
          "tr", {},
          el("td", {}, `${stage}[${i}]`), el("td", {}, scanner),
          el("td", {}, el("span", { class: `badge act-${action}` }, action)),
          el("td", {}, String(threshold)), el("td", { class: "extra" }, extra),
        );
      });
      return el(
        "table", { class: "rules" },
        el("caption", {}, title),
        el("thead", {}, el("tr", {}, ["Key", "Scanner", "Action", "Threshold", "Settings"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows),
      );
    });
    box.replaceChildren(settings, ...tables);
  }

  function showPolicy(policy) {
    yamlBox.value = policy.yaml;
    yamlBox.readOnly = !policy.editable;
    $("policy-save").disabled = !policy.editable;
    const whose = policy.source === "key" ? "Your key's own policy file" : "The server's policy file";
    $("policy-source").textContent = policy.path
      ? `${whose}: ${policy.path}${policy.name ? ` (name: ${policy.name})` : ""}`
      : "No policy is in force: every request passes unscanned. Write one and save it to start.";
    const locked = $("policy-locked");
    locked.hidden = policy.editable;
    locked.textContent = policy.locked_because || "";
    renderRules(policy);
  }

  async function load() {
    showError("");
    showPolicy(await api("/v1/policy"));
  }

  $("policy-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      try {
        const policy = await api("/v1/policy", { method: "PUT", body: { yaml: yamlBox.value } });
        showError("");
        showPolicy(policy);
        say(`Saved: policy "${policy.name}" applies from the next request`);
      } catch (e) {
        if (e.status !== 400) throw e;
        showError(e.message);
        yamlBox.focus();
      }
    }, { busy: $("policy-save") });
  });
  $("policy-reload").addEventListener("click", () => attempt(load));

  // ---- the scan playground ----

  // The text with each finding's span marked; spans count code points, as the server's do.
  function highlighted(text, results) {
    const chars = Array.from(text);
    const spans = [];
    for (const r of results) for (const f of r.findings) if (f.end > f.start) spans.push({ ...f, scanner: r.scanner });
    const cuts = new Set([0, chars.length]);
    for (const s of spans) cuts.add(s.start).add(s.end);
    const points = [...cuts].sort((a, b) => a - b);
    const out = [];
    for (let i = 0; i + 1 < points.length; i++) {
      const [a, b] = [points[i], points[i + 1]];
      const piece = chars.slice(a, b).join("");
      const covering = spans.filter((s) => s.start <= a && s.end >= b);
      if (!covering.length) {
        out.push(piece);
        continue;
      }
      const hit = covering.some((s) => s.hit);
      const label = covering.map((s) => `${s.scanner}: ${s.type} (score ${s.score.toFixed(2)})`).join("; ");
      out.push(el("mark", {
        class: `finding ${hit ? "hit" : "below"} scanner-${covering[0].scanner}`,
        title: label,
        dataset: { types: covering.map((s) => s.type).join(" ") },
      }, piece));
    }
    return out;
  }

  function findingsTable(result) {
    const rows = [];
    for (const r of result.results) {
      if (!r.findings.length) {
        rows.push(el("tr", {}, el("td", {}, r.scanner), el("td", { colspan: "5", class: "muted" }, "nothing found")));
      }
      for (const f of r.findings) {
        const where = f.end > f.start ? `${f.start}–${f.end}` : "whole text";
        rows.push(el(
          "tr", { class: f.hit ? "hit" : "" },
          el("td", {}, r.scanner), el("td", {}, f.type),
          el("td", {}, f.end > f.start ? el("code", {}, f.text) : el("span", { class: "muted" }, "—")),
          el("td", {}, where), el("td", {}, f.score.toFixed(2)),
          el("td", {}, f.hit ? `${r.action} (≥ ${r.threshold})` : `no (< ${r.threshold})`),
        ));
      }
    }
    for (const name of result.skipped) {
      rows.push(el("tr", {}, el("td", {}, name), el("td", { colspan: "5", class: "muted" }, "not run: an earlier rule blocked")));
    }
    if (!rows.length) return el("p", { class: "muted" }, "The policy has no rules for this direction.");
    const head = ["Scanner", "Type", "Text found", "Span", "Score", "Acted"];
    return el(
      "table", { class: "findings" },
      el("caption", { class: "sr-only" }, "Findings"),
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows),
    );
  }

  function showScan(text, result) {
    $("scan-result").hidden = false;
    const decision = result.policy === null
      ? ["No policy is in force: the text passes unscanned."]
      : ["Decision of ", el("strong", {}, result.policy), ": ",
        el("span", { class: `badge act-${result.action}`, id: "scan-action" }, result.action),
        result.blocked ? (result.direction === "input" ? " (the request would be refused)" : " (the answer would be replaced by the refusal)") : ""];
    $("scan-decision").replaceChildren(...decision);
    $("scan-highlighted").replaceChildren(...highlighted(text, result.results));
    $("scan-findings").replaceChildren(findingsTable(result));
    $("scan-redacted").textContent = result.redacted;
  }

  $("scan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("scan-text").value;
    const direction = $("scan-direction").value;
    attempt(async () => showScan(text, await api("/v1/scan", { method: "POST", body: { text, direction } })), {
      busy: $("scan-run"),
    });
  });

  attempt(load);
})();
