// clearlm support desk (/support/conversations/{id}): an agent's reply and the hand-back, sent to
// /v1/support; the page is then loaded again, so the transcript shows what the server stored.
"use strict";

(() => {
  const { api, attempt } = clearlm;
  const page = document.getElementById("support-conversation");
  const form = document.getElementById("reply-form");
  if (!page || !form) return;
  const id = encodeURIComponent(page.dataset.conversationId);
  const text = document.getElementById("reply-text");

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      if (!text.value.trim()) {
        text.focus();
        throw new Error("Write the reply first: it is what the customer reads");
      }
      const language = (document.getElementById("reply-language") || {}).value || "";  // translated when set
      const body = language.trim() ? { text: text.value, language: language.trim() } : { text: text.value };
      await api(`/v1/support/conversations/${id}/replies`, { method: "POST", body });
      window.location.reload();
    }, { busy: document.getElementById("reply-send") });
  });

  const back = document.getElementById("hand-back");
  back.addEventListener("click", () => attempt(async () => {
    await api(`/v1/support/conversations/${id}/handback`, { method: "POST" });
    window.location.reload();
  }, { busy: back }));
})();
