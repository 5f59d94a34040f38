// clearlm chat page: push to talk. Hold the Talk button (or press Space/Enter on it to start and again to
// stop): the microphone is recorded (MediaRecorder), transcribed by /v1/audio/transcriptions (the
// transcript passes the policy and is audited there), and sent as the message through the page's own
// composer, so the answer streams, is governed and stored like a typed one. When that answer is complete
// it is spoken (/v1/audio/speech, in the language heard) and played in the answer's audio player.
"use strict";

(() => {
  const { api, say } = clearlm;
  const talk = document.getElementById("talk");
  const prompt = document.getElementById("prompt");
  const composer = document.getElementById("composer");
  const thread = document.getElementById("messages");
  const player = document.getElementById("voice-answer");
  const heard = document.getElementById("voice-heard");
  if (!talk || !prompt || !composer || !thread) return;
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    talk.disabled = true;
    talk.title = "This browser cannot record audio";
    return;
  }
  let recorder = null;
  let chunks = [];
  let pending = null; // {voice}: the next complete answer is spoken with this voice

  async function start() {
    if (recorder) return;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      say(`The microphone cannot be used: ${e.message || e.name}`, { error: true });
      return;
    }
    chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => e.data.size && chunks.push(e.data));
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((t) => t.stop());
      const blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      recorder = null;
      talk.setAttribute("aria-pressed", "false");
      talk.textContent = "Talk";
      send(blob);
    });
    recorder.start();
    talk.setAttribute("aria-pressed", "true");
    talk.textContent = "Listening… release to send";
    say("Listening");
  }

  function stop() {
    if (recorder && recorder.state === "recording") recorder.stop();
  }

  async function send(blob) {
    talk.disabled = true;
    heard.textContent = "Transcribing…";
    try {
      const form = new FormData();
      form.append("file", blob, "speech.webm");
      form.append("model", "whisper-1");
      form.append("response_format", "verbose_json");
      const t = await api("/v1/audio/transcriptions", { method: "POST", body: form });
      if (!t.text.trim()) {
        heard.textContent = "No speech was heard: hold the button while you speak.";
        say(heard.textContent, { error: true });
        return;
      }
      heard.textContent = `Heard (${t.language}): ${t.text}`;
      pending = { voice: t.language_code === "en" ? "joe" : t.language_code };
      prompt.value = t.text;
      composer.requestSubmit();
    } catch (e) {
      heard.textContent = "";
      say(e.message || String(e), { error: true });
    } finally {
      talk.disabled = false;
    }
  }

  // Speak an answer once the page has stored it (its article has an id and no longer streams).
  new MutationObserver(() => {
    if (!pending) return;
    const last = thread.querySelector("article.msg:last-of-type");
    if (!last || last.dataset.role !== "assistant" || last.classList.contains("streaming")) return;
    if (!/^\d+$/.test(last.dataset.messageId || "")) return;
    const voice = pending.voice;
    pending = null;
    speak(last.querySelector(".msg-body").innerText, voice);
  }).observe(thread, { subtree: true, childList: true, attributes: true, attributeFilter: ["class", "data-message-id"] });

  async function speak(text, voice) {
    if (!text.trim()) return;
    for (const v of voice === "joe" ? ["joe"] : [voice, "joe"]) {
      try {
        const response = await api("/v1/audio/speech", {
          method: "POST",
          body: { input: text.slice(0, 4096), voice: v, response_format: "mp3" },
          raw: true,
        });
        if (player.src) URL.revokeObjectURL(player.src);
        player.src = URL.createObjectURL(await response.blob());
        player.hidden = false;
        await player.play().catch(() => say("The answer is ready to play"));
        return;
      } catch (e) {
        if (v === "joe") say(`The answer cannot be spoken: ${e.message || e}`, { error: true });
      }
    }
  }

  talk.addEventListener("pointerdown", (e) => { e.preventDefault(); start(); });
  talk.addEventListener("pointerup", stop);
  talk.addEventListener("pointerleave", stop);
  talk.addEventListener("keydown", (e) => {
    if (e.key !== " " && e.key !== "Enter") return;
    e.preventDefault();
    if (e.repeat) return;
    recorder ? stop() : start();
  });
})();
