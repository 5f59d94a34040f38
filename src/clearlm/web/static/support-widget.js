/* clearlm's support chat widget: one tag embeds it in any page.
 *
 *   <script src="CLEARLM_SERVER/support/widget.js" data-key="KEY" data-customer="cus_..."></script>
 *   (CLEARLM_SERVER: the origin of the clearlm server; the widget talks only to the server it came from
 *   and loads nothing else.)
 *
 * Attributes (all optional):
 *   data-key       an API key of the desk's tenant, sent as "Authorization: Bearer KEY" (omit it on a
 *                  server without keys). It is visible to anyone who reads the page: see the README.
 *   data-customer  the customer's id (cus_...); without it, a customer is created once per browser
 *                  from data-name (default "Visitor") and data-language (ISO 639-1, default "en").
 *   data-flow      a flow of the desk that starts each new conversation (it asks its first question).
 *   data-title     the panel's title (default "Support"); data-open="true" opens the panel at once;
 *   data-poll      seconds between checks for a person's replies after a hand-off (default 3).
 *
 * It talks to /v1/support on the server the script came from (that server must list the page's origin
 * in support_origins: CORS), shows the desk's replies, their citations when a message has any, a
 * person's replies (polled), notices, and the API's errors (OpenAI-style bodies); "End chat" closes the
 * conversation and asks the one-question survey (a score of 1-5). Plain JavaScript, no
 * build step; its elements live in a shadow root, so the page's styles and the widget's do not mix.
 * Every text is set with textContent: nothing the desk or an agent writes is parsed as HTML.
 */
(function () {
  "use strict";

  var script =
    document.currentScript || document.querySelector('script[src*="/support/widget.js"]');
  if (!script || window.__clearlmSupportWidget) return;
  window.__clearlmSupportWidget = true;

  var d = script.dataset;
  var server = new URL(script.src, location.href).origin;
  var api = server + "/v1/support";
  var pollMs = Math.max(1, Number(d.poll) || 3) * 1000;
  var storeKey = "clearlm-support:" + server + ":";
  var NAMES = { customer: "You", assistant: "Assistant", agent: "Agent", system: "" };
  var CSS = [
    ":host { all: initial; }",
    ".clw { position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; font: 15px/1.4 system-ui,",
    "  sans-serif; color: #1a1a1a; display: flex; flex-direction: column; align-items: flex-end; }",
    ".launcher, button { font: inherit; cursor: pointer; border-radius: 6px; border: 1px solid #0b57d0;",
    "  background: #0b57d0; color: #fff; padding: 8px 14px; }",
    "button.quiet { background: #fff; color: #0b57d0; padding: 4px 10px; }",
    "button:focus-visible, textarea:focus-visible, a:focus-visible { outline: 3px solid #e37400;",
    "  outline-offset: 2px; }",
    "button:disabled { opacity: .6; cursor: default; }",
    ".panel { width: min(360px, calc(100vw - 32px)); max-height: min(560px, calc(100vh - 90px));",
    "  display: flex; flex-direction: column; background: #fff; border: 1px solid #c4c7c5;",
    "  border-radius: 10px; box-shadow: 0 6px 24px rgba(0,0,0,.18); margin-bottom: 10px; }",
    ".panel[hidden] { display: none; }",
    "header { display: flex; align-items: center; gap: 8px; padding: 10px 12px;",
    "  border-bottom: 1px solid #e0e0e0; }",
    "h2 { font-size: 16px; margin: 0; flex: 1; }",
    ".log { overflow-y: auto; flex: 1; min-height: 120px; padding: 10px 12px; }",
    ".messages { list-style: none; margin: 0; padding: 0; }",
    ".messages > li { margin: 0 0 8px; padding: 6px 10px; border-radius: 8px; background: #f1f3f4; }",
    ".text { display: block; white-space: pre-wrap; overflow-wrap: anywhere; }",
    ".messages > li.customer { background: #d3e3fd; margin-left: 40px; }",
    ".messages > li.agent { background: #e6f4ea; border: 1px solid #137333; }",
    ".messages > li.system { background: none; font-style: italic; color: #444; text-align: center; }",
    ".messages > li.pending { opacity: .7; }",
    ".who { display: block; font-size: 12px; font-weight: 600; color: #444; }",
    ".cites { margin: 4px 0 0; padding-left: 18px; font-size: 13px; }",
    ".status, .error { margin: 0; padding: 4px 12px; font-size: 13px; }",
    ".status:empty { display: none; }",
    ".error { color: #a50e0e; background: #fce8e6; }",
    ".error[hidden] { display: none; }",
    ".survey { padding: 4px 12px; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }",
    ".survey p { width: 100%; margin: 0; font-size: 13px; }",
    ".survey[hidden] { display: none; }",
    "form { display: flex; flex-wrap: wrap; gap: 6px; padding: 10px 12px; border-top: 1px solid #e0e0e0; }",
    "label { width: 100%; font-size: 13px; font-weight: 600; }",
    "textarea { flex: 1; font: inherit; resize: none; padding: 6px; border: 1px solid #747775;",
    "  border-radius: 6px; }",
  ].join("\n");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text) node.textContent = text;
    return node;
  }

  function load(name) {
    try {
      return window.localStorage.getItem(storeKey + name);
    } catch (e) {
      return null; // storage blocked (a sandboxed frame, strict privacy settings): nothing kept
    }
  }

  function save(name, value) {
    try {
      if (value === null) window.localStorage.removeItem(storeKey + name);
      else window.localStorage.setItem(storeKey + name, value);
    } catch (e) {
      /* not kept: the next visit starts a new conversation */
    }
  }

  // --- the elements, in a shadow root ---
  var host = el("div", { "data-clearlm-support": "" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var title = d.title || "Support";
  var launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false",
    "aria-controls": "clw-panel" }, "Chat with " + title.toLowerCase());
  var panel = el("section", { class: "panel", id: "clw-panel", "aria-labelledby": "clw-title" });
  panel.hidden = true;
  var header = el("header");
  var endButton = el("button", { type: "button", class: "quiet" }, "End chat");
  var hideButton = el("button", { type: "button", class: "quiet", "aria-label": "Hide the chat" }, "×");
  header.append(el("h2", { id: "clw-title" }, title), endButton, hideButton);
  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": "Messages", tabindex: "0" }); // focusable: it scrolls, so the keyboard must reach it
  var list = el("ol", { class: "messages" });
  log.append(list);
  var status = el("p", { class: "status", role: "status" });
  var error = el("p", { class: "error", role: "alert" });
  error.hidden = true;
  var form = el("form");
  var input = el("textarea", { id: "clw-input", rows: "2", maxlength: "4000",
    "aria-describedby": "clw-hint" });
  var send = el("button", { type: "submit" }, "Send");
  form.append(el("label", { for: "clw-input" }, "Your message"), input, send,
    el("span", { id: "clw-hint", hidden: "" }, "Enter sends; Shift+Enter starts a new line."));
  var survey = el("div", { class: "survey", role: "group", "aria-labelledby": "clw-survey" });
  survey.hidden = true;
  survey.append(el("p", { id: "clw-survey" }, "How satisfied were you with this chat?"));
  ["not at all satisfied", "not satisfied", "neither", "satisfied", "very satisfied"].forEach(
    function (words, i) {
      var rateButton = el("button", { type: "button", class: "quiet",
        "aria-label": i + 1 + " of 5: " + words }, String(i + 1));
      rateButton.addEventListener("click", function () {
        rate(i + 1);
      });
      survey.append(rateButton);
    });
  panel.append(header, log, status, error, survey, form);
  var box = el("div", { class: "clw" });
  box.append(panel, launcher);
  if ("adoptedStyleSheets" in Document.prototype && root !== host) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    root.append(el("style", {}, CSS));
  }
  root.append(box);

  // --- the conversation ---
  var state = { customer: d.customer || load("customer"), conversation: null, seen: {}, opening: null,
    timer: null, pollFailed: false, sending: false, unread: 0 };

  function ApiError(statusCode, message, retryAfter) {
    this.status = statusCode;
    this.message = message;
    this.retryAfter = retryAfter;
  }

  async function call(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (d.key) headers.Authorization = "Bearer " + d.key;
    var response;
    try {
      response = await fetch(api + path, { method: method, headers: headers, mode: "cors",
        credentials: "omit", body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, "Cannot reach the support desk at " + server +
        ": check your connection and try again.");
    }
    var json = null;
    try {
      json = await response.json();
    } catch (e) {
      /* not JSON: described by the status below */
    }
    if (!response.ok) {
      var message = json && json.error && json.error.message;
      throw new ApiError(response.status, message || "The support desk answered HTTP " +
        response.status + ".", response.headers.get("retry-after"));
    }
    return json;
  }

  function showError(e) {
    var text = e instanceof ApiError ? e.message : String(e);
    if (e.status) text = "Error " + e.status + ": " + text;
    if (e.retryAfter) text += " (try again in " + e.retryAfter + " s)";
    error.textContent = text;
    error.hidden = false;
  }

  function clearError() {
    error.hidden = true;
    error.textContent = "";
  }

  function citation(c) {
    var item = el("li");
    var label = typeof c === "string" ? c : c.title || c.source || c.id || JSON.stringify(c);
    if (c && typeof c.url === "string" && /^https?:\/\//.test(c.url)) {
      item.append(el("a", { href: c.url, target: "_blank", rel: "noopener noreferrer" }, label));
    } else {
      item.textContent = label;
    }
    return item;
  }

  function show(messages) {
    (messages || []).forEach(function (m) {
      if (state.seen[m.id]) return;
      state.seen[m.id] = true;
      var item = el("li", { class: m.role, "data-id": String(m.id) });
      if (NAMES[m.role]) item.append(el("span", { class: "who" }, NAMES[m.role]));
      item.append(el("span", { class: "text" }, m.text));
      if (Array.isArray(m.citations) && m.citations.length) {
        var cites = el("ol", { class: "cites", "aria-label": "Sources" });
        m.citations.forEach(function (c) {
          cites.append(citation(c));
        });
        item.append(cites);
      }
      var after = Array.prototype.find.call(list.children, function (li) {
        return li.dataset.id && Number(li.dataset.id) > m.id;
      });
      list.insertBefore(item, after || list.querySelector("li.pending"));
      if (panel.hidden && m.role !== "customer") state.unread += 1;
    });
    launcher.textContent = "Chat with " + title.toLowerCase() +
      (state.unread ? " (" + state.unread + " new)" : "");
    log.scrollTop = log.scrollHeight;
  }

  function adopt(conversation) {
    var before = state.conversation;
    state.conversation = conversation;
    var closed = conversation.status === "closed";
    if (closed && before && before.id === conversation.id && before.status !== "closed") {
      survey.hidden = false; // closed while the customer watched: the one-question survey
    }
    input.disabled = closed;
    send.disabled = closed || state.sending; // (a poll's answer during a send keeps Send disabled)
    endButton.textContent = closed ? "New chat" : "End chat";
    if (closed) status.textContent = "This chat is closed. Choose New chat to write again.";
    else if (conversation.status === "handed_off") status.textContent = "A person will answer here.";
    else status.textContent = "";
  }

  async function openConversation() {
    if (!state.customer) {
      var made = await call("POST", "/customers", { name: d.name || "Visitor",
        language: d.language || "en" });
      state.customer = made.id;
      save("customer", made.id);
    }
    var saved = load("conversation:" + state.customer);
    if (saved) {
      try {
        var found = await call("GET", "/conversations/" + encodeURIComponent(saved));
        if (found.status !== "closed") {
          show(found.messages);
          adopt(found);
          return;
        }
      } catch (e) {
        if (e.status !== 404) throw e; // gone (another server, a new database): start again
      }
    }
    var body = { customer_id: state.customer };
    if (d.flow) body.flow = d.flow;
    var reply;
    try {
      reply = await call("POST", "/conversations", body);
    } catch (e) {
      if (e.status !== 404 || d.customer || !load("customer")) throw e;
      save("customer", null); // this browser's customer is gone: make a new one
      state.customer = null;
      return openConversation();
    }
    save("conversation:" + state.customer, reply.conversation.id);
    show(reply.messages);
    adopt(reply.conversation);
  }

  function ensure() {
    if (state.conversation) return Promise.resolve();
    if (!state.opening) {
      state.opening = openConversation().then(startPolling).finally(function () {
        state.opening = null;
      });
    }
    return state.opening;
  }

  async function poll() {
    var c = state.conversation;
    if (c && c.status !== "closed" && !document.hidden) {
      try {
        var found = await call("GET", "/conversations/" + encodeURIComponent(c.id));
        if (state.conversation && state.conversation.id === found.id) {
          show(found.messages);
          adopt(found);
        }
        if (state.pollFailed) clearError();
        state.pollFailed = false;
      } catch (e) {
        state.pollFailed = true;
        showError(e);
      }
    }
    state.timer = setTimeout(poll, pollMs);
  }

  function startPolling() {
    if (state.timer === null) {
      state.timer = 0;
      poll();
    }
  }

  async function post(text) {
    clearError();
    state.sending = send.disabled = true;
    var pending = el("li", { class: "customer pending" });
    pending.append(el("span", { class: "who" }, "You (sending)"), el("span", { class: "text" }, text));
    list.append(pending);
    log.scrollTop = log.scrollHeight;
    input.value = "";
    try {
      await ensure();
      var id = encodeURIComponent(state.conversation.id);
      var reply = await call("POST", "/conversations/" + id + "/messages", { text: text });
      pending.remove();
      show(reply.messages);
      adopt(reply.conversation);
      if (reply.notice) status.textContent = reply.notice;
    } catch (e) {
      pending.remove();
      if (!input.value) input.value = text; // kept, to send again
      showError(e);
    } finally {
      state.sending = false;
      send.disabled = input.disabled;
      input.focus();
    }
  }

  async function rate(score) {
    clearError();
    try {
      var id = encodeURIComponent(state.conversation.id);
      await call("POST", "/conversations/" + id + "/csat", { score: score });
      survey.hidden = true;
      status.textContent = "Thank you for your rating.";
      endButton.focus();
    } catch (e) {
      showError(e);
    }
  }

  async function endOrRestart() {
    clearError();
    try {
      if (state.conversation && state.conversation.status === "closed") {
        save("conversation:" + state.customer, null);
        state.conversation = null;
        state.seen = {};
        list.textContent = "";
        survey.hidden = true;
        await ensure();
        input.focus();
        return;
      }
      await ensure();
      var done = await call("POST", "/conversations/" +
        encodeURIComponent(state.conversation.id) + "/close");
      show(done.messages);
      adopt(done);
      endButton.focus();
    } catch (e) {
      showError(e);
    }
  }

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (!open) {
      launcher.focus();
      return;
    }
    state.unread = 0;
    show([]);
    input.focus();
    ensure().catch(showError);
  }

  launcher.addEventListener("click", function () {
    setOpen(panel.hidden);
  });
  hideButton.addEventListener("click", function () {
    setOpen(false);
  });
  endButton.addEventListener("click", endOrRestart);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") setOpen(false);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (text && !send.disabled) post(text);
  });

  function mount() {
    document.body.append(host);
    if (d.open === "true") setOpen(true);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
