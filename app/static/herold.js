// Progressive enhancement only: every page works without this file.
// - a live character counter on the composer (counted as the server counts),
// - a confirmation before destructive forms (data-confirm),
// - a copy button for invite links (data-copy).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // As the server counts: a link weighs 23 characters, a remote mention counts without its domain.
  var URL_RE = /(^|[^\w\/@.:])(https?:\/\/[^\s<>"]+)/gi;
  var REMOTE_MENTION_RE = /(^|[^=\/\w@])(@[A-Za-z0-9_][A-Za-z0-9_.\-]*)@[\w.\-]*\w(?::[0-9]{1,5})?/g;

  function visibleLength(text) {
    text = text.replace(URL_RE, function (_match, before) { return before + "xxxxxxxxxxxxxxxxxxxxxxx"; });
    text = text.replace(REMOTE_MENTION_RE, function (_match, before, name) { return before + name; });
    return Array.from(text).length;
  }

  function setUpCounter(textarea) {
    var max = parseInt(textarea.getAttribute("data-max-chars"), 10);
    var counter = document.getElementById(textarea.id + "-counter");
    if (!counter || !max) { return; }
    var template = counter.getAttribute("data-template") || "{left}";
    var form = textarea.form;
    var spoiler = form ? form.querySelector("[data-counts-toward='" + textarea.id + "']") : null;
    function update() {
      var used = visibleLength(textarea.value.trim()) + (spoiler ? Array.from(spoiler.value.trim()).length : 0);
      var left = max - used;
      counter.textContent = template.replace("{left}", String(left));
      counter.classList.toggle("over", left < 0);
    }
    textarea.addEventListener("input", update);
    if (spoiler) { spoiler.addEventListener("input", update); }
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea[data-max-chars]").forEach(setUpCounter);

    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });

    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.getElementById(button.getAttribute("data-copy"));
        if (!field) { return; }
        field.select();
        if (navigator.clipboard) { navigator.clipboard.writeText(field.value).catch(function () {}); }
      });
    });
  });
})();
