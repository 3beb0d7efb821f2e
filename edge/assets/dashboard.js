// Refreshes the dashboard's tables every second from /dashboard/data.
// Values are written with textContent only, never as HTML.
(function () {
  "use strict";
  var fields = ["rate", "error_percentage", "success", "failure", "timeout", "short_circuited",
    "rejected", "fallback", "p50", "p90", "p99"];

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function render(data) {
    data.commands.forEach(function (c) {
      var row = document.querySelector('tr[data-command="' + c.name + '"]');
      if (!row) return;
      var state = row.querySelector('[data-field="state"]');
      state.textContent = c.state;
      state.className = "badge state-" + c.state;
      fields.forEach(function (f) {
        var el = row.querySelector('[data-field="' + f + '"]');
        if (!el) return;
        var v = c[f];
        el.textContent = typeof v === "number" && !Number.isInteger(v) ? v.toFixed(1) : String(v);
      });
      row.querySelector('[data-field="bulkhead"]').textContent = c.concurrent + "/" + c.max_concurrent;
      // The server draws the charts; redraw with its latest points.
      var rate = row.querySelector('[data-line="rate"]');
      if (rate) rate.setAttribute("points", c.rate_line);
      var errors = row.querySelector('[data-line="errors"]');
      if (errors) errors.setAttribute("points", c.error_line);
    });
    var body = document.getElementById("instances");
    while (body.firstChild) body.removeChild(body.firstChild);
    if (data.instances.length === 0) {
      var tr = document.createElement("tr");
      var td = cell("None known: no middletier is registered, or the registry is unreachable.");
      td.colSpan = 3;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    data.instances.forEach(function (i) {
      var tr = document.createElement("tr");
      tr.appendChild(cell(i.id));
      tr.appendChild(cell(i.address));
      tr.appendChild(cell(i.available ? "yes" : "no (cooling down)"));
      body.appendChild(tr);
    });
  }

  function poll() {
    fetch("/dashboard/data", { headers: { accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () { /* keep the last figures; try again next tick */ })
      .finally(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
