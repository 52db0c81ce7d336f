// What a click on this element would land on instead of it, if anything: the executor's
// "covered" error names it so that a policy can read what to close (a consent wall, a pop-up).
// Called as `locator.evaluate(source)`. Scrolls the element into view first when it is outside
// the viewport (the click would too). Returns null when a click at its centre reaches it.
(el) => {
  const vw = window.innerWidth, vh = window.innerHeight;
  let r = el.getBoundingClientRect();
  if (r.bottom <= 0 || r.top >= vh || r.right <= 0 || r.left >= vw) {
    el.scrollIntoView({ block: 'center', inline: 'center' });
    r = el.getBoundingClientRect();
  }
  if (r.width * r.height === 0) return null;
  const x = Math.min(Math.max((Math.max(r.left, 0) + Math.min(r.right, vw)) / 2, 0), vw - 1);
  const y = Math.min(Math.max((Math.max(r.top, 0) + Math.min(r.bottom, vh)) / 2, 0), vh - 1);
  const root = el.getRootNode && el.getRootNode().elementFromPoint ? el.getRootNode() : document;
  const hit = root.elementFromPoint(x, y);
  if (!hit || hit === el || el.contains(hit)) return null;
  if (hit.localName === 'label' && hit.control === el) return null;
  const text = (n) => (n.innerText || n.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 80);
  const dialog = hit.closest('[data-sr1-dialog]');
  if (dialog) return { dialog: dialog.getAttribute('data-sr1-dialog'), text: text(dialog) };
  const named = hit.closest('[data-sr1-name]');
  if (named) return { name: named.getAttribute('data-sr1-name'), text: text(named) };
  // Else the layer it belongs to (the outermost fixed or z-indexed ancestor), as tag#id.class.
  let layer = hit;
  for (let n = hit; n && n !== document.body && n !== document.documentElement; n = n.parentElement) {
    const st = getComputedStyle(n);
    if (st.position === 'fixed' || st.position === 'sticky' || (st.position === 'absolute' && st.zIndex !== 'auto')) layer = n;
  }
  // An empty backdrop: what people read is the box drawn above it (a sibling layer).
  if (!text(layer) && layer.parentElement) {
    const z = (n) => parseInt(getComputedStyle(n).zIndex, 10) || 0;
    const box = Array.from(layer.parentElement.children).filter((n) => n !== layer && text(n) &&
      getComputedStyle(n).position !== 'static' && z(n) >= z(layer) && n.getBoundingClientRect().width > 0)
      .sort((a, b) => z(b) - z(a))[0];
    if (box && box.hasAttribute('data-sr1-dialog')) return { dialog: box.getAttribute('data-sr1-dialog'), text: text(box) };
    if (box) layer = box;
  }
  const cls = (layer.getAttribute('class') || '').trim().split(/\s+/).filter(Boolean).slice(0, 2);
  return { element: layer.localName + (layer.id ? '#' + layer.id : '') + cls.map((c) => '.' + c).join(''), text: text(layer) };
}
