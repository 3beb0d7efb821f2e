// Small enhancements; the page works without them.
// - dates become "3 h ago", with the local date in a tooltip;
// - a form's button shows it is busy, so it is not pressed twice;
// - a flash message can be dismissed.
(function () {
  "use strict";

  function ago(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 0) return null;
    var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(seconds / units[i][1]);
      if (n >= 1) return n + " " + units[i][0] + (n > 1 ? "s" : "") + " ago";
    }
    return "just now";
  }

  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date.getTime())) return;
    var relative = ago(date);
    if (relative) {
      el.title = date.toLocaleString();
      el.textContent = relative;
    }
  });

  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.disabled = true;
        button.textContent = form.getAttribute("data-busy");
      }
    });
  });

  document.querySelectorAll("[data-flash]").forEach(function (flash) {
    var button = flash.querySelector("[data-dismiss]");
    if (!button) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      flash.remove();
      var input = document.getElementById("feed-url");
      if (input) input.focus();
    });
  });
})();
