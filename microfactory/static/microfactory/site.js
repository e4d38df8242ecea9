// Small behaviours of the pages, here rather than inline: the Content-Security-Policy allows
// no inline scripts or event-handler attributes (docs/operations.md, "Security headers").

// A form marked data-submit-once sends nothing on a second click while the first submit is
// under way (the order form: its idempotency key makes a repeated POST harmless anyway).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !("submitOnce" in form.dataset)) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
});

// A select marked data-autosubmit submits its form when it changes (the orders filter).
document.addEventListener("change", (event) => {
  const select = event.target;
  if (select instanceof HTMLSelectElement && "autosubmit" in select.dataset && select.form) {
    select.form.requestSubmit();
  }
});
