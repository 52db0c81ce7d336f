// Select one option of a <select> the way a person's choice does: set it, then fire `input` and
// `change` (pages listen for those, e.g. to update the price or auto-submit a filter form).
// Called with the select element itself or one of its <option>s; `index` is the option to pick
// (null: the option element that was named).
(el, index) => {
  const select = el.tagName.toLowerCase() === "option" ? el.closest("select") : el;
  if (!select) return { ok: false, reason: "option is not inside a <select>" };
  const i = index === null || index === undefined ? el.index : index;
  const option = select.options[i];
  if (!option) return { ok: false, reason: `no option at index ${i}` };
  if (option.disabled) return { ok: false, reason: `option ${JSON.stringify(option.label)} is disabled` };
  select.focus();
  select.selectedIndex = i;
  select.dispatchEvent(new Event("input", { bubbles: true }));
  select.dispatchEvent(new Event("change", { bubbles: true }));
  return { ok: true, label: option.label, value: option.value };
}
