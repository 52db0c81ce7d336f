// Facts about one live element, read just before the executor acts on it.
// Called as `locator.evaluate(source)`: the argument is the element the policy named.
//
// Side effect, on purpose: a link or form that would open a new tab (target=_blank) is retargeted
// to the current tab. A shopper session is one tab; a popup would leave the policy looking at a
// page it did not choose while the new page is invisible to it.
(el) => {
  // Control characters go before matching (envs/text.py holds the same pattern): "Pl\u0000ace order"
  // must read as "Place order".
  const CONTROLS = /(?:\x1b\[|\x9b)[0-?]*[ -\/]*[@-~]|(?:\x1b[\]P^_X]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
  const clean = (v) => (v || "").replace(CONTROLS, "").replace(/\s+/g, " ").trim();
  const tag = el.tagName.toLowerCase();
  const type = (el.getAttribute("type") || (tag === "input" ? "text" : "")).toLowerCase();
  const select = tag === "option" ? el.closest("select") : tag === "select" ? el : null;
  const probe = tag === "option" ? select || el : el;

  const rect = probe.getBoundingClientRect();
  const styleVisible = typeof probe.checkVisibility === "function"
    ? probe.checkVisibility({ checkOpacity: false, checkVisibilityCSS: true })
    : getComputedStyle(probe).visibility !== "hidden" && getComputedStyle(probe).display !== "none";
  const visible = styleVisible && rect.width > 0 && rect.height > 0;

  const ariaDisabled = (n) => !!n.closest('[aria-disabled="true"]');
  const disabled = !!(el.disabled || (select && select.disabled) || ariaDisabled(el)
    || el.closest("fieldset:disabled"));

  const form = el.form || el.closest("form");
  const submitTexts = form
    ? Array.from(form.querySelectorAll('button:not([type]), button[type="submit"], input[type="submit"], input[type="image"]'))
        .map((b) => clean(b.innerText || b.value || b.getAttribute("aria-label") || "")).filter(Boolean)
    : [];

  const link = el.closest("a[href]");
  for (const node of [link, form, el]) {
    if (node && node.getAttribute && (node.getAttribute("target") || "").toLowerCase() === "_blank") {
      node.setAttribute("target", "_self");
    }
  }

  const isSubmitter = (tag === "button" && (type === "" || type === "submit"))
    || (tag === "input" && (type === "submit" || type === "image"));
  const purchase = el.getAttribute("data-purchase") === "true"
    || !!el.closest('[data-purchase="true"]') && (isSubmitter || tag === "a")
    || (isSubmitter && !!form && form.getAttribute("data-purchase") === "true");

  // What the purchase guard needs to judge a form by meaning (envs/purchase.py matches the words):
  // where it posts and what its fields are called. Patterns stay in Python, in envs/controls.py.
  const describeField = (f) => ({
    type: (f.getAttribute("type") || f.tagName).toLowerCase(),
    autocomplete: (f.getAttribute("autocomplete") || "").toLowerCase(),
    words: clean([f.getAttribute("name"), f.id, f.getAttribute("aria-label"), f.getAttribute("placeholder"),
      f.labels ? Array.from(f.labels).map((l) => l.textContent).join(" ") : ""].filter(Boolean).join(" ")).slice(0, 200),
  });
  const NOT_FIELDS = new Set(["hidden", "submit", "button", "reset", "image"]);
  const formFacts = form ? {
    method: clean((isSubmitter && el.getAttribute("formmethod")) || form.getAttribute("method") || "get").toLowerCase(),
    action: isSubmitter && el.hasAttribute("formaction") ? el.formAction : form.action,
    purchase: form.getAttribute("data-purchase") === "true",
    fields: Array.from(form.elements)
      .filter((f) => /^(input|select|textarea)$/i.test(f.tagName) && !NOT_FIELDS.has((f.getAttribute("type") || "").toLowerCase()))
      .slice(0, 40).map(describeField),
    submit_texts: submitTexts.slice(0, 5),
  } : null;

  const text = clean(el.innerText || el.value || el.getAttribute("aria-label") || el.getAttribute("title") || "")
    .slice(0, 200);

  return {
    tag,
    type,
    visible,
    disabled,
    readonly: !!el.readOnly,
    editable: !!el.isContentEditable,
    text,
    href: link ? link.href : "",
    in_form: !!form,
    submits: isSubmitter && !!form,
    form_purchase: !!form && form.getAttribute("data-purchase") === "true",
    form_submit_texts: submitTexts.slice(0, 5),
    purchase,
    form: formFacts,
    field: /^(input|select|textarea)$/.test(tag) ? describeField(el) : null,
    options: select ? Array.from(select.options).map((o) => ({
      label: (o.label || o.textContent || "").replace(/\s+/g, " ").trim(),
      value: o.value,
      disabled: !!o.disabled,
    })) : [],
    option_index: tag === "option" ? el.index : -1,
  };
}
