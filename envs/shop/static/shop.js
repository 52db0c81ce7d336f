// shopr1.example page helpers. Nothing here is needed to shop: every link and form works
// without JavaScript. Like a real store, it adds small conveniences and a metrics beacon stub.
(function () {
  "use strict";
  var metrics = window.sr1Metrics || (window.sr1Metrics = []);
  metrics.push({ event: "view", page: (window.sr1Page || {}).type, t: Date.now() });

  document.addEventListener("DOMContentLoaded", function () {
    // "Back to top" scrolls smoothly instead of jumping.
    var top = document.querySelector(".nav-back-to-top");
    if (top) {
      top.addEventListener("click", function (ev) {
        ev.preventDefault();
        window.scrollTo({ top: 0, behavior: "smooth" });
      });
    }
    // Remember the last search box value for this tab (no network, no cookies).
    var box = document.querySelector('form[role="search"] input[type="search"]');
    if (box && !box.value && window.sessionStorage) {
      box.placeholder = sessionStorage.getItem("sr1-last-query") || box.placeholder;
      box.form.addEventListener("submit", function () {
        sessionStorage.setItem("sr1-last-query", box.value);
      });
    }
  });
})();
