// Two-phase helper around pressing Enter in a named input.
//   mode "arm":   start watching for a `submit` event anywhere in the page (capture phase, so a
//                 page handler that cancels the submit for an AJAX search still counts as one).
//   mode "check": if no submit happened, submit the input's form ourselves (requestSubmit runs
//                 validation and the page's submit handlers, like a real submit button would).
// Returns "submitted" | "fallback_submitted" | "no_form".
(el, mode) => {
  const key = Symbol.for("shop_r1.submitted");
  if (mode === "arm") {
    window[key] = false;
    const hook = Symbol.for("shop_r1.submit_hook");
    if (!window[hook]) {
      window.addEventListener("submit", () => { window[key] = true; }, true);
      window[hook] = true;
    }
    return "armed";
  }
  if (window[key]) return "submitted";
  const form = el.form || el.closest("form");
  if (!form) return "no_form";
  if (typeof form.requestSubmit === "function") form.requestSubmit();
  else form.submit();
  return "fallback_submitted";
}
