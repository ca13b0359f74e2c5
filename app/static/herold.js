// Progressive enhancement only: every page works without this file.
// - a live character counter on the composer (counted as the server counts),
// - a confirmation before destructive forms (data-confirm),
// - a copy button for invite links (data-copy),
// - the composer's attachments: previews, a focal-point picker, drag-and-drop and paste, and a
//   question before publishing pictures without a description.
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

  function setUpFocusPicker(slot) {
    var picker = slot.querySelector("[data-focus-picker]");
    var input = slot.querySelector(".focus-input");
    if (!picker || !input) { return; }
    var image = picker.querySelector("img");
    var mark = picker.querySelector(".focus-mark");
    function show() {
      var parts = input.value.split(",").map(parseFloat);
      if (parts.length !== 2 || isNaN(parts[0]) || isNaN(parts[1])) { return; }
      // Mastodon's focal point: x from -1 (left) to 1 (right), y from -1 (bottom) to 1 (top).
      mark.style.left = ((parts[0] + 1) / 2 * 100) + "%";
      mark.style.top = ((1 - parts[1]) / 2 * 100) + "%";
    }
    picker.addEventListener("click", function (event) {
      if (!image) { return; }
      var box = image.getBoundingClientRect();
      var x = Math.max(-1, Math.min(1, ((event.clientX - box.left) / box.width) * 2 - 1));
      var y = Math.max(-1, Math.min(1, 1 - ((event.clientY - box.top) / box.height) * 2));
      input.value = x.toFixed(2) + "," + y.toFixed(2);
      show();
    });
    input.addEventListener("input", show);
    show();
    var file = slot.querySelector("input[type=file]");
    if (file && image) {
      file.addEventListener("change", function () {
        var chosen = file.files && file.files[0];
        slot.toggleAttribute("data-empty", !chosen);
        if (!chosen || !/^image\//.test(chosen.type)) { picker.hidden = true; return; }
        // A data: URL, which the pages' Content-Security-Policy allows for pictures (blob: it does not).
        var reader = new FileReader();
        reader.onload = function () { image.src = reader.result; picker.hidden = false; show(); };
        reader.readAsDataURL(chosen);
      });
    }
  }

  function setUpMediaDrop(fieldset) {
    var form = fieldset.form || fieldset.closest("form");
    function place(files) {
      var inputs = Array.prototype.slice.call(fieldset.querySelectorAll("input[type=file]"));
      Array.prototype.forEach.call(files, function (file) {
        var free = inputs.filter(function (input) { return !input.files || input.files.length === 0; })[0];
        if (!free || typeof DataTransfer === "undefined") { return; }
        var transfer = new DataTransfer();
        transfer.items.add(file);
        free.files = transfer.files;
        free.dispatchEvent(new Event("change"));
      });
    }
    fieldset.addEventListener("dragover", function (event) { event.preventDefault(); fieldset.classList.add("dragging"); });
    fieldset.addEventListener("dragleave", function () { fieldset.classList.remove("dragging"); });
    fieldset.addEventListener("drop", function (event) {
      event.preventDefault();
      fieldset.classList.remove("dragging");
      if (event.dataTransfer && event.dataTransfer.files.length) { place(event.dataTransfer.files); }
    });
    if (form) {
      form.addEventListener("paste", function (event) {
        var files = event.clipboardData && event.clipboardData.files;
        if (files && files.length) { event.preventDefault(); place(files); }
      });
      form.addEventListener("submit", function (event) {
        var question = fieldset.getAttribute("data-missing-description");
        if (!question || form.querySelector("[name=without_descriptions]")) { return; }
        var missing = Array.prototype.some.call(fieldset.querySelectorAll("[data-media-slot]"), function (slot) {
          var file = slot.querySelector("input[type=file]");
          var kept = slot.querySelector("input[type=hidden][name^=media_id_]");
          var described = slot.querySelector("textarea").value.trim() !== "";
          return !described && (kept || (file && file.files && file.files.length));
        });
        if (!missing) { return; }
        if (!window.confirm(question)) { event.preventDefault(); return; }
        var confirmed = document.createElement("input");
        confirmed.type = "hidden";
        confirmed.name = "without_descriptions";
        confirmed.value = "1";
        form.appendChild(confirmed);
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-media-slot]").forEach(setUpFocusPicker);
    document.querySelectorAll("[data-media-drop]").forEach(setUpMediaDrop);
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
