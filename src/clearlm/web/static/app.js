// clearlm web UI: what every page shares. No framework, no build step; nothing is loaded from elsewhere.
"use strict";

const clearlm = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // An OpenAI-style error body's message, or the HTTP status.
  async function errorOf(response) {
    try {
      const body = await response.json();
      return body?.error?.message || `${response.status} ${response.statusText}`;
    } catch (_) {
      return `${response.status} ${response.statusText}`;
    }
  }

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // fetch on this server's /v1 API with the session cookie and the CSRF token; JSON in, JSON out.
  // Throws ApiError with the server's message on a 4xx/5xx (a 401 sends the browser to sign in).
  async function api(path, { method = "GET", body, signal, raw = false, headers = {} } = {}) {
    const init = { method, signal, credentials: "same-origin", headers: { "X-CSRF-Token": csrf(), ...headers } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      location.href = "/signin?next=" + encodeURIComponent(location.pathname);
      throw new ApiError("sign in again", 401);
    }
    if (!response.ok) throw new ApiError(await errorOf(response), response.status);
    if (raw) return response;
    return response.status === 204 ? null : response.json();
  }

  // Server-sent events of a streaming response: calls onEvent(parsed JSON) per `data:` line until [DONE].
  async function stream(path, body, onEvent, signal) {
    const response = await api(path, { method: "POST", body, signal, raw: true });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") return;
          onEvent(JSON.parse(data));
        }
      }
    }
  }

  // A message in the page's live region (role=status), or an error (role=alert) the user must see.
  function say(message, { error = false } = {}) {
    const box = document.getElementById("status");
    if (!box) return;
    box.hidden = false;
    box.textContent = message;
    box.className = error ? "status error" : "status";
    box.setAttribute("role", error ? "alert" : "status");
    clearTimeout(say.timer);
    if (!error) say.timer = setTimeout(() => (box.hidden = true), 4000);
  }

  // An element: el("button", {class: "x", onclick: f}, "text", child...). Text is always text, never HTML.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Copy text to the clipboard, with a word to say it worked.
  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      say("Copied");
    } catch (_) {
      say("The browser did not allow copying: select the text and copy it", { error: true });
    }
  }

  // Run an async action from a button or form; show its error message instead of failing silently.
  async function attempt(action, { busy } = {}) {
    if (busy) busy.disabled = true;
    try {
      return await action();
    } catch (e) {
      if (e.name !== "AbortError") say(e.message || String(e), { error: true });
    } finally {
      if (busy) busy.disabled = false;
    }
  }

  return { api, stream, say, el, copy, attempt, csrf, ApiError };
})();
