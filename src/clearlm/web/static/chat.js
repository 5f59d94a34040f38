// clearlm chat page: conversations kept on the server (/v1/conversations), answers streamed as they are
// written. Stored messages arrive rendered by the server (chat.html); a streaming answer is shown as plain
// text (textContent), then replaced by the server's Markdown HTML when the final event brings it: that
// HTML (markdown-it-py, raw HTML off) is the only HTML this page inserts.
"use strict";

(() => {
  const { api, stream, say, el, copy, attempt } = clearlm;
  const root = document.getElementById("chat");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const thread = $("messages");
  const prompt = $("prompt");
  const sendButton = $("send");
  const stopButton = $("stop");
  const data = JSON.parse($("chat-data").textContent);
  const texts = new Map(data.messages.map((m) => [String(m.id), m.content])); // for copy and edit
  const citations = new Map(data.messages.filter((m) => m.citations).map((m) => [String(m.id), m.citations]));
  const DEFAULTS = { model: null, system_prompt: "", temperature: 0.7, max_tokens: null, knowledge_base: null, knowledge_answer: "generate" };
  let conversationId = root.dataset.conversationId || null;
  let settings = { ...DEFAULTS, ...data.settings };
  // a new conversation with a model chosen elsewhere (the adapters page's "Chat with it": /chat?model=NAME)
  const asked = conversationId ? null : new URLSearchParams(location.search).get("model");
  if (asked) settings.model = asked;
  let controller = null; // the running turn's

  // ---- messages

  const GOVERNANCE = { redact: "redacted", block: "refused", warn: "flagged" };

  function badges(m) {
    const meta = m.meta || {};
    const out = [];
    const mark = meta.ai_generated;
    if (mark) out.push([`AI-generated · ${mark.model}`, "ai", mark.notice]);
    if (meta.reviewed_by) out.push(["answered by a reviewer", "ok", `review ${meta.review_id || ""}`]);
    if (m.status !== "complete") out.push([m.status, m.status === "failed" ? "bad" : "warn", meta.error || ""]);
    const gov = meta.governance || {};
    if (GOVERNANCE[gov.action] && m.status !== "refused") {
      out.push([GOVERNANCE[gov.action], "warn", `policy ${gov.policy}: ${(gov.findings || []).join(", ")}`]);
    }
    if (gov.escalated) out.push(["sent for review", "warn", `policy ${gov.policy}`]);
    return out.map(([text, cls, title]) => el("span", { class: `badge ${cls}`, title: title || undefined }, text));
  }

  function who(m) {
    if (m.role === "user") return "You";
    return m.meta && m.meta.reviewed_by ? "Reviewer" : "Assistant";
  }

  // An <article> like the server renders (chat.html's message macro).
  function article(m) {
    const id = String(m.id ?? "pending");
    const headingId = `who-${id}-${Math.random().toString(36).slice(2, 8)}`;
    const body = el("div", { class: "msg-body" });
    const node = el("article", { class: "msg", "aria-labelledby": headingId, dataset: { role: m.role, messageId: id, status: m.status || "complete" } },
      el("div", { class: "msg-head" }, el("h2", { class: "who", id: headingId }, who(m)), badges(m)),
      body,
      el("div", { class: "msg-actions", role: "toolbar", "aria-label": "Actions on this message" }));
    fill(node, m);
    return node;
  }

  // Put a stored message (with its server-rendered html) into an <article>.
  function fill(node, m) {
    const id = String(m.id);
    node.dataset.messageId = id;
    node.dataset.status = m.status;
    texts.set(id, m.content);
    const body = node.querySelector(".msg-body");
    if (m.html !== undefined) body.innerHTML = m.html; // server-rendered Markdown (html disabled): safe
    else body.textContent = m.content;
    node.querySelector(".msg-head").replaceChildren(
      el("h2", { class: "who", id: node.getAttribute("aria-labelledby") }, who(m)), ...badges(m));
    node.querySelector(".msg-error")?.remove();
    if (m.meta && m.meta.error) body.after(el("p", { class: "error msg-error" }, m.meta.error));
    const actions = node.querySelector(".msg-actions");
    actions.replaceChildren(el("button", { type: "button", class: "copy" }, "Copy"));
    if (m.role === "user") actions.append(el("button", { type: "button", class: "edit" }, "Edit"));
    if (m.role === "assistant" && m.content && !(m.meta && m.meta.reviewed_by)) actions.append(el("button", { type: "button", class: "why" }, "Why?"));
    if (m.meta && m.meta.citations) citations.set(id, m.meta.citations);
    decorate(node);
  }

  // Copy buttons on code blocks; citations (citations.js) on an answer from a knowledge base.
  function decorate(node) {
    for (const pre of node.querySelectorAll(".msg-body pre")) {
      if (pre.previousElementSibling?.classList.contains("code-bar")) continue;
      pre.before(el("div", { class: "code-bar" }, el("button", { type: "button", class: "copy-code" }, "Copy code")));
    }
    const cited = citations.get(node.dataset.messageId);
    if (cited && node.dataset.role === "assistant") window.clearlmCitations?.render(node, cited);
  }

  // Only the last answer, when it is the last message, can be regenerated.
  function markLastAnswer() {
    thread.querySelectorAll("button.regenerate").forEach((b) => b.remove());
    const last = thread.querySelector("article.msg:last-of-type");
    if (last && last.dataset.role === "assistant" && !controller) {
      last.querySelector(".msg-actions").append(el("button", { type: "button", class: "regenerate" }, "Regenerate"));
    }
  }

  const articles = () => [...thread.querySelectorAll("article.msg")];
  // The scroller is a column-reverse flex box: scrollTop 0 is its end, and it stays there as messages grow.
  const scroller = $("scroller");
  const scrollToEnd = () => { scroller.scrollTop = 0; };
  const nearEnd = () => Math.abs(scroller.scrollTop) < 120;
  thread.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    const node = button && button.closest("article.msg");
    if (!node) return;
    const id = node.dataset.messageId;
    if (button.classList.contains("copy")) copy(texts.get(id) ?? node.querySelector(".msg-body").innerText);
    else if (button.classList.contains("copy-code")) copy(button.parentElement.nextElementSibling.innerText);
    else if (button.classList.contains("edit")) startEdit(node);
    else if (button.classList.contains("why")) window.clearlmWhy?.open({ conversationId, messageId: id, article: node });
    else if (button.classList.contains("regenerate")) attempt(() => regenerate(node), { busy: button });
  });

  // ---- a turn

  function busy(on) {
    sendButton.disabled = on;
    stopButton.disabled = !on;
    thread.querySelectorAll("button.edit, button.regenerate").forEach((b) => { b.disabled = on; });
    scroller.setAttribute("aria-busy", on ? "true" : "false");
  }

  async function ensureConversation() {
    if (conversationId) return;
    const conv = await api("/v1/conversations", { method: "POST", body: { settings: cleanSettings() } });
    conversationId = conv.id;
    history.replaceState(null, "", `/chat/${conv.id}`);
    showConversation(conv);
  }

  function showConversation(conv) {
    root.dataset.conversationId = conv.id;
    $("conv-title").textContent = conv.title;
    document.title = `${conv.title} · clearlm`;
    document.querySelector(".conv-actions").hidden = false;
    $("export-md").href = `/v1/conversations/${conv.id}/export?format=markdown`;
    $("export-json").href = `/v1/conversations/${conv.id}/export?format=json`;
    thread.querySelector(".empty-thread")?.remove();
  }

  // Send a turn (body: {content} | {edit, content} | {regenerate: true}) and stream its answer.
  async function turn(body, userText) {
    await ensureConversation();
    controller = new AbortController();
    busy(true);
    let mine = null;
    if (userText !== undefined) {
      mine = article({ id: "pending", role: "user", content: userText, status: "complete", meta: {} });
      thread.append(mine);
    }
    const answer = article({ id: "pending", role: "assistant", content: "", status: "complete", meta: {} });
    answer.classList.add("streaming");
    answer.querySelector(".msg-actions").replaceChildren();
    const body_ = answer.querySelector(".msg-body");
    const live = el("p", { class: "plain" });
    body_.append(live);
    thread.append(answer);
    scrollToEnd();
    let text = "";
    let stored = null;
    let failed = null;
    try {
      await stream(`/v1/conversations/${conversationId}/turns`, { ...body, stream: true }, (event) => {
        if (event.object === "conversation.message") {
          if (event.message.role === "user" && mine) fill(mine, event.message);
          else if (event.message.role === "assistant") stored = event.message;
        } else if (event.error) {
          failed = event.error.message;
        } else if (event.choices && event.choices[0]) {
          const delta = event.choices[0].delta || {};
          if (delta.content) {
            text += delta.content;
            live.textContent = text; // model text: as text while it streams
            if (nearEnd()) scrollToEnd();
          }
        }
      }, controller.signal);
      if (stored) fill(answer, stored);
      say(failed ? `The answer failed: ${failed}` : "Answer complete", { error: Boolean(failed) });
    } catch (e) {
      if (e.name === "AbortError") {
        answer.dataset.status = "stopped";
        answer.querySelector(".msg-head").append(el("span", { class: "badge warn" }, "stopped"));
        say("Stopped: the answer so far is kept");
      } else {
        say(e.message || String(e), { error: true });
      }
      await resync(e.name === "AbortError" ? 10 : 1);
    } finally {
      answer.classList.remove("streaming");
      controller = null;
      busy(false);
      markLastAnswer();
      attempt(refreshList);
    }
  }

  // Read the conversation back from the server and show its last messages as stored (after a stop the
  // server stores the answer when it notices the client left: a moment later).
  async function resync(tries) {
    for (let i = 0; i < tries; i++) {
      const conv = await api(`/v1/conversations/${conversationId}?html=true`);
      const last = conv.messages[conv.messages.length - 1];
      if (last && last.role === "assistant" || i === tries - 1) {
        render(conv.messages);
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  function render(messages) {
    thread.replaceChildren(...messages.map(article));
    markLastAnswer();
    scrollToEnd();
  }

  async function regenerate(node) {
    node.remove();
    await turn({ regenerate: true });
  }

  function startEdit(node) {
    if (controller || node.querySelector("form.edit-form")) return;
    const id = node.dataset.messageId;
    const area = el("textarea", { rows: "3", maxlength: "200000", "aria-label": "Edit your message" });
    area.value = texts.get(id) || "";
    const form = el("form", { class: "edit-form" }, area,
      el("div", { class: "row" },
        el("button", { type: "submit", class: "primary" }, "Send edited"),
        el("button", { type: "button", class: "cancel", onclick: () => { form.remove(); node.querySelector(".msg-body").hidden = false; } }, "Cancel")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const content = area.value;
      if (!content.trim()) return say("Write something first", { error: true });
      const all = articles();
      all.slice(all.indexOf(node)).forEach((n) => n.remove()); // this message and what follows
      attempt(() => turn({ edit: Number(id), content }, content));
    });
    node.querySelector(".msg-body").hidden = true;
    node.querySelector(".msg-body").after(form);
    area.focus();
  }

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const content = prompt.value;
    if (!content.trim() || controller) return;
    prompt.value = "";
    attempt(async () => {
      try {
        await turn({ content }, content);
      } catch (e) {
        if (!prompt.value) prompt.value = content; // not sent: the text is not lost
        throw e;
      }
    }).then(() => prompt.focus());
  });
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  stopButton.addEventListener("click", () => controller?.abort());

  // ---- the conversation list

  function listItem(conv) {
    return el("li", {}, el("a", { href: `/chat/${conv.id}`, "aria-current": conv.id === conversationId ? "page" : undefined }, conv.title));
  }

  let listed = 0; // the latest listing asked for: an older answer arriving later is dropped
  async function refreshList() {
    const ask = ++listed;
    const q = $("conv-search").value.trim();
    const found = await api("/v1/conversations" + (q ? `?q=${encodeURIComponent(q)}` : ""));
    if (ask !== listed) return;
    const items = found.data.map(listItem);
    $("conv-list").replaceChildren(...(items.length ? items : [el("li", { class: "muted empty" }, q ? "No conversation matches" : "No conversations yet")]));
    const mine = found.data.find((c) => c.id === conversationId);
    if (mine) {
      $("conv-title").textContent = mine.title;
      document.title = `${mine.title} · clearlm`;
    }
  }

  let searchTimer = null;
  $("conv-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => attempt(refreshList), 250);
  });
  $("new-chat").addEventListener("click", () => { location.href = "/chat"; });

  function dialog(id, onOk) {
    const box = $(id);
    box.querySelector(".cancel").addEventListener("click", () => box.close());
    box.querySelector("form").addEventListener("submit", (e) => {
      e.preventDefault();
      attempt(async () => { await onOk(); box.close(); });
    });
    return box;
  }

  const renameBox = dialog("rename-dialog", async () => {
    const conv = await api(`/v1/conversations/${conversationId}`, { method: "PATCH", body: { title: $("rename-title").value } });
    $("conv-title").textContent = conv.title;
    await refreshList();
    say("Renamed");
  });
  $("rename").addEventListener("click", () => {
    $("rename-title").value = $("conv-title").textContent;
    renameBox.showModal();
  });
  const deleteBox = dialog("delete-dialog", async () => {
    await api(`/v1/conversations/${conversationId}`, { method: "DELETE" });
    location.href = "/chat";
  });
  $("delete").addEventListener("click", () => deleteBox.showModal());

  // ---- settings

  function cleanSettings() {
    const s = { ...settings };
    if (s.model === root.dataset.model) s.model = null;
    return s;
  }

  async function loadChoices() {
    const [models, kbs] = await Promise.all([api("/v1/models"), api("/v1/kb").catch(() => ({ data: [] }))]);
    const modelSelect = $("set-model");
    if (asked && !models.data.some((m) => m.id === asked)) {
      settings.model = null;
      say(`The model ${asked} is not served here: chatting with ${root.dataset.model}`, { error: true });
    }
    const chosen = settings.model || root.dataset.model;
    modelSelect.replaceChildren(...models.data.filter((m) => m.id !== root.dataset.embeddingModel)
      .map((m) => el("option", { value: m.id, selected: m.id === chosen }, m.id)));
    const kbSelect = $("set-kb");
    kbSelect.replaceChildren(el("option", { value: "" }, "None"),
      ...kbs.data.map((k) => el("option", { value: k.id, selected: k.id === settings.knowledge_base }, `${k.id} (${k.files} files)`)));
  }

  function showSettings() {
    $("set-temperature").value = settings.temperature;
    $("set-kb-answer").value = settings.knowledge_answer || "generate";
    $("set-max-tokens").value = settings.max_tokens ?? "";
    $("set-system").value = settings.system_prompt || "";
  }

  $("settings-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const maxTokens = $("set-max-tokens").value.trim();
    settings = {
      ...settings,
      model: $("set-model").value || null,
      knowledge_base: $("set-kb").value || null,
      knowledge_answer: $("set-kb-answer").value,
      temperature: Number($("set-temperature").value || 0.7),
      max_tokens: maxTokens ? Number(maxTokens) : null,
      system_prompt: $("set-system").value,
    };
    attempt(async () => {
      if (conversationId) {
        const conv = await api(`/v1/conversations/${conversationId}`, { method: "PATCH", body: { settings: cleanSettings() } });
        settings = { ...DEFAULTS, ...conv.settings };
      }
      say("Settings saved");
    });
  });

  showSettings();
  attempt(loadChoices);
  // after every deferred script has run (citations.js loads after this one)
  document.addEventListener("DOMContentLoaded", () => thread.querySelectorAll("article.msg").forEach(decorate));
  markLastAnswer();
  scrollToEnd();
})();
