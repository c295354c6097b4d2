// Kargo UI: progressive enhancement only (every page works without it).
// - a button with data-copy="ID" copies the text of element ID and says so;
// - a form with data-confirm="question" asks before it is sent.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    const status = document.getElementById("copy-status");
    if (!source) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = source.value ?? source.textContent;
      try {
        await navigator.clipboard.writeText(text);
        if (status) status.textContent = "Copied.";
      } catch {
        source.select?.();
        if (status) status.textContent = "Press Ctrl+C (⌘C) to copy the selected token.";
      }
    });
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
