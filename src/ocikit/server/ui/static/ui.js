// ocikit serve UI: copy buttons and the live repository filter. No data is ever put into markup here.
"use strict";
(function () {
  function copyText(text, button) {
    function done() {
      button.textContent = "copied";
      button.classList.add("done");
      setTimeout(function () { button.textContent = "copy"; button.classList.remove("done"); }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else {
      fallback(text);
      done();
    }
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(area);
  }
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest("button[data-copy-for]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy-for"));
    if (source) { copyText(source.textContent, button); }
  });
  document.addEventListener("input", function (ev) {
    var input = ev.target;
    if (!input.matches || !input.matches("input[data-filter]")) { return; }
    var needle = input.value.toLowerCase();
    document.querySelectorAll(input.getAttribute("data-filter")).forEach(function (row) {
      var name = (row.getAttribute("data-name") || "").toLowerCase();
      row.hidden = needle !== "" && name.indexOf(needle) < 0;
    });
  });
})();
