// Small enhancements on top of server-rendered pages; everything works without this file.
"use strict";

// Copy buttons: <button type="button" class="copy-button" data-copy="text" hidden>Copy</button>.
// They are hidden until this script runs, so a page without JavaScript shows no dead button.
function enableCopyButtons(root) {
  if (!navigator.clipboard) return;
  root.querySelectorAll("button.copy-button[data-copy]").forEach((button) => {
    button.hidden = false;
    if (button.dataset.copyReady) return;
    button.dataset.copyReady = "1";
    button.addEventListener("click", async () => {
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });
}

document.addEventListener("DOMContentLoaded", () => enableCopyButtons(document));
// htmx swaps in fresh partials (the live server page): enable their buttons too.
document.addEventListener("htmx:afterSettle", (event) => enableCopyButtons(event.target));
