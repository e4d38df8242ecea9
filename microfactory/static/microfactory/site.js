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

// The menu button of the page header: on a phone the links fold behind it (site.css, under
// "Phones"). Without this script the button stays hidden and the links wrap instead.
document.addEventListener("DOMContentLoaded", () => {
  const header = document.querySelector("header.top");
  const toggle = header && header.querySelector(".menu-toggle");
  if (!toggle) return;
  header.classList.add("foldable");
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    header.classList.toggle("open", open);
  });
});

// On a phone a table with a header row shows each row as a card, each cell under its column's
// name (site.css, under "Phones"): the names are copied here from the header row into each
// cell's data-label, for the pages' tables and for those htmx swaps in later. A template may set
// data-label itself; it is kept.
function labelTableCells(root) {
  const tables = root.querySelectorAll ? root.querySelectorAll("table") : [];
  for (const table of [...(root.matches && root.matches("table") ? [root] : []), ...tables]) {
    const head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head) continue;
    const names = [];
    for (const cell of head.cells) {
      for (let span = 0; span < cell.colSpan; span++) names.push(cell.textContent.trim());
    }
    for (const body of [...table.tBodies, ...(table.tFoot ? [table.tFoot] : [])]) {
      for (const row of body.rows) {
        let column = 0;
        for (const cell of row.cells) {
          const name = names[column] || "";
          if (!cell.hasAttribute("data-label") && name && cell.colSpan === 1) {
            cell.setAttribute("data-label", name);
          }
          column += cell.colSpan;
        }
      }
    }
  }
}
document.addEventListener("DOMContentLoaded", () => labelTableCells(document));
document.addEventListener("htmx:load", (event) => labelTableCells(event.target));
