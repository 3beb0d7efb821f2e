// Enhancements; every action also works without them, through the forms.
// - dates stay relative ("3 h ago"), with the local time in a tooltip;
// - read and star buttons change the item in place (PUT /api/items/{id});
// - opening an item shows it as read at once;
// - keyboard: j/k next/previous, o open, m read/unread, s star, r refresh, ? help;
// - a form's button shows it is busy, so it is not pressed twice;
// - a flash message can be dismissed.
(function () {
  "use strict";

  function ago(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 0) return null;
    var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["h", 3600], ["min", 60]];
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(seconds / units[i][1]);
      if (n >= 1) {
        var unit = units[i][0];
        var plural = unit.length > 3 && n > 1 ? "s" : "";
        return n + " " + unit + plural + " ago";
      }
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
        button.firstChild.textContent = form.getAttribute("data-busy");
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

  // --- Items in place -------------------------------------------------

  var LABELS = {
    read: ["Mark read", "Mark unread"],
    starred: ["☆ Star", "★ Unstar"]
  };

  function showState(item, field, on) {
    item.classList.toggle(field === "read" ? "is-read" : "is-starred", on);
    var form = item.querySelector('form[data-toggle="' + field + '"]');
    if (!form) return;
    form.querySelector('input[name="' + field + '"]').value = on ? "false" : "true";
    var button = form.querySelector("button");
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.firstChild.textContent = LABELS[field][on ? 1 : 0];
  }

  function unreadDelta(item, delta) {
    var card = item.closest(".card");
    var count = card && card.querySelector("[data-unread]");
    if (!count) return;
    var n = Math.max(0, parseInt(count.firstChild.textContent, 10) + delta);
    count.firstChild.textContent = String(n);
    var total = document.title.match(/^\((\d+)\) (.*)$/);
    if (total) {
      var t = Math.max(0, parseInt(total[1], 10) + delta);
      document.title = (t > 0 ? "(" + t + ") " : "") + total[2];
    }
  }

  // Sends a change; on failure, falls back to the form (the page reloads
  // with the server's message).
  function change(item, field, on, form) {
    var body = {};
    body[field] = on;
    return fetch("/api/items/" + encodeURIComponent(item.getAttribute("data-item")), {
      method: "PUT",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      var wasRead = item.classList.contains("is-read");
      showState(item, field, on);
      if (field === "read" && wasRead !== on) unreadDelta(item, on ? -1 : 1);
    }).catch(function () {
      if (form) form.submit();
    });
  }

  document.querySelectorAll("form[data-toggle]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var item = form.closest("[data-item]");
      if (!item) return;
      event.preventDefault();
      var field = form.getAttribute("data-toggle");
      var on = form.querySelector('input[name="' + field + '"]').value === "true";
      change(item, field, on, form);
    });
  });

  // Opening an article marks it read; show it. The page's items, in
  // order, go with it, so j/k on the article page walk this view.
  function remember() {
    var ids = Array.prototype.map.call(document.querySelectorAll("[data-item]"), function (el) {
      return el.getAttribute("data-item");
    });
    try {
      sessionStorage.setItem("rss.list", JSON.stringify({ ids: ids, back: location.pathname + location.search }));
    } catch (e) { /* storage off: j/k on the article page do nothing */ }
  }
  document.querySelectorAll("[data-item] a.item-title").forEach(function (link) {
    link.addEventListener("click", function () {
      remember();
      var item = link.closest("[data-item]");
      if (!item.classList.contains("is-read")) {
        showState(item, "read", true);
        unreadDelta(item, -1);
      }
    });
  });

  // --- Keyboard -------------------------------------------------------

  var items = Array.prototype.slice.call(document.querySelectorAll("[data-item]"));
  var current = -1;
  var help = document.getElementById("keys");
  var helpButton = document.querySelector("[data-help-open]");

  function select(index) {
    if (items.length === 0) return;
    index = Math.max(0, Math.min(items.length - 1, index));
    if (current >= 0) items[current].classList.remove("is-current");
    current = index;
    items[current].classList.add("is-current");
    items[current].focus();
    items[current].scrollIntoView({ block: "nearest" });
  }

  function showHelp() {
    if (help && typeof help.showModal === "function" && !help.open) help.showModal();
  }
  if (helpButton && help) {
    helpButton.hidden = false;
    helpButton.addEventListener("click", showHelp);
  }

  // --- The article page: j/k walk the view it was opened from -----------

  var article = document.querySelector("[data-article]");
  var near = { next: null, prev: null, back: null };
  if (article) {
    var list = null;
    try { list = JSON.parse(sessionStorage.getItem("rss.list") || "null"); } catch (e) { list = null; }
    if (list && Array.isArray(list.ids)) {
      var at = list.ids.indexOf(article.getAttribute("data-article"));
      if (at >= 0 && at + 1 < list.ids.length) near.next = "/items/" + list.ids[at + 1];
      if (at > 0) near.prev = "/items/" + list.ids[at - 1];
      if (typeof list.back === "string" && list.back.charAt(0) === "/") near.back = list.back;
    }
    [["next", "[data-next]"], ["prev", "[data-prev]"]].forEach(function (pair) {
      var link = document.querySelector(pair[1]);
      if (link && near[pair[0]]) { link.href = near[pair[0]]; link.hidden = false; }
    });
    var backLink = document.querySelector("[data-back]");
    if (backLink && near.back) {
      backLink.href = near.back;
      backLink.textContent = near.back.indexOf("/river") === 0 ? "Back to the river" : "Back to your feeds";
    }
  }

  function articleKey(key) {
    var submit = function (selector) {
      var form = document.querySelector(selector);
      if (form) form.submit();
    };
    switch (key) {
      case "j": if (near.next) location.href = near.next; break;
      case "k": if (near.prev) location.href = near.prev; break;
      case "u": location.href = near.back || "/river"; break;
      case "v":
        var original = document.querySelector("[data-original]");
        if (original) location.href = original.href;
        break;
      case "s": submit('form[data-toggle="starred"]'); break;
      case "m": submit('form[data-toggle="read"]'); break;
      default: return false;
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    if (help && help.open) return;
    if (article) {
      if (articleKey(event.key)) event.preventDefault();
      return;
    }
    var item = current >= 0 ? items[current] : null;
    switch (event.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "o":
        if (item) {
          var link = item.querySelector("a.item-title");
          if (link) link.click();
        }
        break;
      case "v":
        if (item) {
          var original = item.querySelector('a[href$="/open"]');
          if (original) { remember(); original.click(); }
        }
        break;
      case "m":
        if (item) change(item, "read", !item.classList.contains("is-read"), item.querySelector('form[data-toggle="read"]'));
        break;
      case "s":
        if (item) change(item, "starred", !item.classList.contains("is-starred"), item.querySelector('form[data-toggle="starred"]'));
        break;
      case "r":
        if (item) {
          var card = item.closest(".card");
          var refresh = card && card.querySelector("form[data-refresh]");
          if (refresh) refresh.requestSubmit();
        }
        break;
      case "?": showHelp(); break;
      default: return;
    }
    event.preventDefault();
  });
})();
