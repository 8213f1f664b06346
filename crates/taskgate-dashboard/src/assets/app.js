// taskgate dashboard: small enhancements only; every page works without this script.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});
// A typed confirmation: the form's submit button stays disabled until the text matches.
for (const input of document.querySelectorAll("input[data-confirm]")) {
  const submit = input.form && input.form.querySelector("button[type=submit]");
  if (!submit) continue;
  const check = () => { submit.disabled = input.value.trim() !== input.dataset.confirm; };
  input.addEventListener("input", check);
  check();
}
// Esc closes an open disclosure panel and returns focus to its summary.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = event.target.closest && event.target.closest("details[open]");
  if (!open) return;
  open.open = false;
  open.querySelector("summary").focus();
});
// Copy buttons are shown only where the script runs.
for (const el of document.querySelectorAll("[data-copy][hidden]")) el.hidden = false;
// Lists marked data-refresh reload every minute while the tab is visible, nothing is being
// typed and no row is checked.
const refresh = document.querySelector("[data-refresh]");
if (refresh) {
  setInterval(() => {
    const typing = document.activeElement && document.activeElement.matches("input, select, textarea");
    const open = document.querySelector("details[open]");
    const checked = document.querySelector("input[type=checkbox]:checked");
    if (document.visibilityState === "visible" && !typing && !open && !checked) location.reload();
  }, Number(refresh.dataset.refresh) * 1000);
}
