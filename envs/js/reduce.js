// The page reducer's in-page half: one pass over the live DOM that decides visibility, finds
// every interactable, derives a hierarchical readable name for each, and emits a simplified tree.
//
// Evaluated by envs/reducer.py with page.evaluate(<this file>, opts). Everything that needs the
// live layout (computed styles, client rects, labels) happens here, in the page, because one
// evaluate is far cheaper than shipping the raw DOM to Python. Token budgeting happens in Python,
// which owns the tokenizer; to make that possible each emitted node carries its distance (px)
// from the viewport and whether it is actionable.
//
// Output tree node: {tag, attrs, children, dist, actionable} where children are strings or nodes,
// dist = px outside the viewport (0 = visible region) and actionable marks a named control
// (envs/reducer.py reads it as its TreeNode).
//
// Names: scope segments from the element's ancestors (override selectors, landmarks, labelled
// regions, sections led by a heading, items of repeated lists titled by their heading) + a token
// for the control itself (its label, text, title, placeholder...). No per-site rules; a numeric
// suffix _2, _3 only breaks real ties, in document order, so names are stable across reloads.
//
// Frames and shadow DOM: the walk descends into same-origin iframes (their controls named under
// the frame's title, positions shifted by the frame's offset) and open shadow roots (the flat
// tree: a host's shadow children, a slot's assigned nodes), because real shops put payment
// fields and web components there. What it cannot read — cross-origin frames, and closed shadow
// roots, which envs/js/shadow_hook.js remembers as they are attached — is left as a note in the
// tree and listed in `unreadable`, so the policy and the user know part of the page is hidden.
(opts) => {
  const t0 = performance.now();
  opts = opts || {};
  const overrides = opts.overrides || {};
  const keepRaw = !!opts.keepRaw;
  const MAX_SCOPES = 3;
  const vw = window.innerWidth, vh = window.innerHeight;

  const SKIP = new Set(['script', 'style', 'noscript', 'template', 'svg', 'canvas', 'iframe', 'frame',
    'frameset', 'link', 'meta', 'head', 'object', 'embed', 'video', 'audio', 'map', 'source',
    'track', 'picture', 'title', 'base', 'param', 'math']);
  const INLINE = new Set(['span', 'b', 'i', 'strong', 'em', 'small', 'font', 'abbr', 'sup', 'sub',
    'u', 's', 'del', 'ins', 'mark', 'cite', 'q', 'time', 'bdi', 'bdo', 'code', 'kbd', 'var', 'big',
    'strike', 'tt', 'data', 'wbr', 'nobr']);
  const KEEP = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'table',
    'thead', 'tbody', 'tfoot', 'tr', 'td', 'th', 'caption', 'form', 'label', 'p', 'fieldset', 'legend']);
  const HEADINGS = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
  const ROLES = new Set(['button', 'link', 'tab', 'menuitem', 'menuitemcheckbox', 'menuitemradio',
    'checkbox', 'radio', 'option', 'switch', 'textbox', 'searchbox', 'combobox', 'slider', 'spinbutton',
    'treeitem']);
  const TEXT_INPUTS = new Set(['text', 'search', 'email', 'number', 'password', 'tel', 'url', 'date',
    'datetime-local', 'month', 'week', 'time', '']);
  const NATIVE = new Set(['a', 'button', 'input', 'select', 'textarea', 'summary', 'option']);

  // ---- text helpers -------------------------------------------------------------------------
  // Page text is data, never terminal control: escape sequences and C0/C1 control characters go
  // (envs/text.py says why and holds the same pattern).
  const CONTROLS = /(?:\x1b\[|\x9b)[0-?]*[ -\/]*[@-~]|(?:\x1b[\]P^_X]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
  const ws = (s) => (s || '').replace(CONTROLS, '').replace(/[\s\u00a0\u200b]+/g, ' ').trim();
  const slug = (s, maxWords, maxChars) => {
    let t = (s || '').normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
      .replace(/['\u2019]/g, '').replace(/&/g, ' and ').replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
    if (!t) return '';
    let words = t.split('_').slice(0, maxWords || 5);
    let out = '';
    for (const w of words) {
      const next = out ? out + '_' + w : w;
      if (next.length > (maxChars || 40) && out) break;
      out = next.slice(0, maxChars || 40);
    }
    return out;
  };
  // An id or name attribute is used only when it reads as words ("search-form"), never when it is
  // generated ("s0-50-12", "gh-ac"): opaque tokens make names unstable across page versions.
  const readable = (id) => {
    if (!id || /\d/.test(id) || id.length > 40) return '';
    const parts = id.replace(/([a-z])([A-Z])/g, '$1_$2').split(/[-_\s.:]+/).filter(Boolean);
    if (!parts.length || !parts.some((p) => p.length >= 4)) return '';
    if (parts.filter((p) => p.length <= 2).length * 2 >= parts.length) return '';
    return slug(parts.join(' '), 4, 32);
  };
  const attr = (el, a) => { const v = el.getAttribute(a); return v == null ? '' : ws(v); };
  const byIds = (ids, el) => {
    if (!ids) return '';
    const root = el && away ? el.getRootNode() : document;  // a shadow root or a frame's document
    const scope = root.getElementById ? root : document;
    return ws(ids.split(/\s+/).map((id) => {
      const e = id && scope.getElementById(id); return e ? e.textContent : '';
    }).join(' '));
  };

  // A price as shops print it ("$39.99", "EUR 49.00", "12,50 €"): what makes a list item a product.
  const PRICE_SRC = '(?:[$\u20ac\u00a3\u00a5\u20b9]|\\b(?:EUR|USD|GBP|CHF|CAD|AUD)\\b)\\s?\\d[\\d.,]*|\\d[\\d.,]*\\s?(?:\u20ac|\\b(?:EUR|USD|GBP)\\b)';
  const PRICE = new RegExp(PRICE_SRC);
  const PRICE_ALL = new RegExp(PRICE_SRC, 'g');
  // An item shows a price in its own text, or in a link that says more than the price ("Kalis
  // Lite 10.0 Grey New $80.00"); a price facet ("$25 to $50") is all price and does not count.
  const pricedItem = (it) => it.priced || it.controls.some((r) => PRICE.test(r.text) &&
    r.text.replace(PRICE_ALL, ' ').split(/\s+/).filter((w) => /[a-z]{2}/i.test(w)).length >= 3);

  // ---- visibility ---------------------------------------------------------------------------
  const visible = (el) => {
    if (el.hidden || el.getAttribute('aria-hidden') === 'true') return false;
    if (el.checkVisibility) return el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
    const st = getComputedStyle(el);
    return st.display !== 'none' && st.visibility !== 'hidden' && st.opacity !== '0';
  };
  // Offset of the frame being walked (0 in the top document): rects inside a frame are relative
  // to the frame's viewport. `away` is true inside a frame or a shadow root.
  let offX = 0, offY = 0, away = false;
  const distOf = (r) => {
    const top = r.top + offY, bottom = r.bottom + offY;
    if (bottom < 0) return Math.round(-bottom);
    if (top > vh) return Math.round(top - vh);
    return 0;
  };
  const inViewport = (r) => r.bottom + offY > 0 && r.top + offY < vh && r.right + offX > 0 && r.left + offX < vw &&
    r.width * r.height > 0;

  // ---- override hook ------------------------------------------------------------------------
  const overrideOf = new Map();
  for (const [sel, prefix] of Object.entries(overrides)) {
    let hits;
    try { hits = document.querySelectorAll(sel); } catch (e) {
      return { error: `invalid override selector ${JSON.stringify(sel)}: ${e.message}` };
    }
    for (const h of hits) overrideOf.set(h, prefix);
  }

  // ---- interactables ------------------------------------------------------------------------
  // A label's own words: a label wrapping its select would otherwise lend it every option's text.
  const ownText = (label, el) => {
    const out = [];
    const tw = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
    for (let n = tw.nextNode(); n; n = tw.nextNode()) if (!el.contains(n)) out.push(n.textContent);
    return out.join(' ');
  };
  const labelTextOf = (el) => {
    if (el.labels && el.labels.length) return ws(Array.from(el.labels).map((l) => (l.contains(el) ? ownText(l, el) : l.textContent)).join(' '));
    return '';
  };
  const isSearchy = (el) => /search|query|(^|[^a-z])q($|[^a-z])|keyword/i.test(
    [el.type, el.name, el.id, el.placeholder, attr(el, 'aria-label'), attr(el, 'role')].join(' '));

  function interactableKind(el, tag) {
    const role = (el.getAttribute('role') || '').toLowerCase();
    if (tag === 'input') {
      const type = (el.type || 'text').toLowerCase();
      if (type === 'hidden') return null;
      if (role === 'presentation' || role === 'none') {
        // e.g. a decorative checkbox inside a link: the link is the control
        if (el.closest('a[href],button,label')) return null;
      }
      return TEXT_INPUTS.has(type) ? 'input' : 'clickable';
    }
    if (tag === 'textarea') return 'input';
    if (tag === 'select') return 'select';
    if (tag === 'a') return (el.hasAttribute('href') || el.hasAttribute('onclick') || role) ? 'clickable' : null;
    if (tag === 'button' || tag === 'summary') return 'clickable';
    if (el.isContentEditable && !(el.parentElement && el.parentElement.isContentEditable)) return 'input';
    if (role === 'textbox' || role === 'searchbox' || role === 'combobox') return 'input';
    if (ROLES.has(role)) return 'clickable';
    if (el.hasAttribute('onclick')) return 'clickable';
    if (tag === 'label' && el.control && /^(radio|checkbox)$/.test(el.control.type) && !visible(el.control)) {
      return 'clickable'; // a styled option whose real radio is visually hidden: the label is clicked
    }
    const ti = el.getAttribute('tabindex');
    if (ti !== null && parseInt(ti, 10) >= 0 && ws(el.textContent).length > 0 && el.children.length <= 3) return 'clickable';
    // A cursor:pointer leaf whose parent is not a pointer region: a script-driven control.
    if (el.childElementCount <= 3 && getComputedStyle(el).cursor === 'pointer' &&
        !(el.parentElement && getComputedStyle(el.parentElement).cursor === 'pointer')) {
      const t = ws(el.textContent);
      if (t.length > 0 && t.length < 120 && !el.querySelector('a,button,input,select,textarea')) return 'clickable';
    }
    return null;
  }

  // The words the control is known by, best source first.
  function controlLabel(el, tag, text) {
    const aria = attr(el, 'aria-label') || byIds(el.getAttribute('aria-labelledby'), el);
    if (aria) return aria;
    if (tag === 'input' || tag === 'select' || tag === 'textarea') {
      const type = (el.type || '').toLowerCase();
      if ((type === 'submit' || type === 'button' || type === 'reset') && el.value) return ws(el.value);
      const lab = labelTextOf(el);
      if (lab) return lab;
      if (type === 'image' && el.alt) return ws(el.alt);
      const other = attr(el, 'title') || attr(el, 'placeholder');
      if (other) return other;
      if ((type === 'radio' || type === 'checkbox') && el.value && el.value !== 'on') return ws(el.value);
      return readable(el.getAttribute('name')) || readable(el.id) || '';
    }
    // A control whose text is only a count or a glyph (a cart icon with its badge "0", a bare "✕")
    // is known by its icon: a title, an image's alt, an icon's class ("icon-cart"), not the count.
    if (text && !/\p{L}/u.test(text)) {
      const icon = attr(el, 'title') || iconName(el);
      if (icon) return icon;
      if (CLOSE_GLYPH.test(text)) return 'close';
    }
    return text || attr(el, 'title') || iconName(el) || readable(el.id) || '';
  }
  // Words an icon inside a control is known by: an image's alt, an svg's title or label, else a
  // readable class of the icon ("icon-cart", "fa-shopping-bag") less the words every icon has.
  const ICON_NOISE = new Set(['icon', 'icons', 'ico', 'btn', 'button', 'toggle', 'link', 'badge', 'count', 'counter',
    'wrapper', 'wrap', 'container', 'trigger', 'open', 'fa', 'fas', 'far', 'glyph', 'glyphicon', 'svg', 'img', 'image',
    'header', 'nav', 'item', 'js', 'solid', 'outline', 'regular', 'light', 'mini', 'small', 'large', 'lg', 'sm']);
  function iconName(el) {
    const icons = el.querySelectorAll('img[alt],svg,i,[class*=icon],[aria-label],[title]');
    for (const i of icons) {
      const words = (i.localName === 'img' ? i.alt : '') || attr(i, 'aria-label') || attr(i, 'title') ||
        (i.localName === 'svg' && i.querySelector('title') ? ws(i.querySelector('title').textContent) : '');
      if (words && /\p{L}/u.test(words)) return ws(words);
    }
    if (!icons.length) return '';
    for (const n of [el].concat(Array.from(icons))) {
      const words = (n.getAttribute('class') || '').split(/\s+/).flatMap((c) => c.replace(/([a-z])([A-Z])/g, '$1 $2')
        .split(/[-_\s]+/)).map((w) => w.toLowerCase()).filter((w) => w.length >= 3 && !/\d/.test(w) && !ICON_NOISE.has(w));
      if (words.length) return words.slice(0, 3).join(' ');
    }
    return '';
  }
  const CLOSE_GLYPH = /^[\u00d7\u2715\u2716\u2717\u2573xX\u2a2f]$/;

  // ---- scopes -------------------------------------------------------------------------------
  // The heading an element opens with: itself, or its first child when that child shows nothing
  // but the heading (a toggle around it, an empty chevron beside it). A first child with more in it (a sidebar column led by "Show results for")
  // is a section of its own, and its heading names only that column, not the page around it.
  function headingOf(c) {
    for (let depth = 0; c && depth < 2; depth++) {
      if (HEADINGS.has(c.localName)) return c;
      const h = c.firstElementChild;
      if (!h || NATIVE.has(c.localName) || ws(c.textContent) !== ws(h.textContent)) return null;
      c = h;
    }
    return null;
  }
  function leadingHeading(el) {
    const c = el.firstElementChild;
    if (!c || (c.previousSibling && c.previousSibling.nodeType === 3 && ws(c.previousSibling.textContent))) return null;
    return headingOf(c);
  }
  // A short heading names a section; a long one is a title, a heading that is a link an item's
  // title: neither names anything, though both end the section before them.
  function headingSeg(h) {
    const text = ws(h.textContent);
    if (/:\s*\S/.test(text)) return '';  // "Rating: N/A" is a value, not a section's name
    if (text && text.split(' ').length <= 4 && text.length <= 32 && !h.querySelector('a,button')) return slug(text, 3, 24);
    return '';
  }
  const levelOf = (h) => +h.localName[1];
  // Does a block open with a short heading, at most two levels down ("Brand" over a facet list)?
  // Such a block is a section, never an item of a result list, even when it does not get the
  // heading's name (its first child holds more than the heading).
  function opensWithSection(el) {
    if (el.childElementCount < 2 && !(el.firstElementChild && el.firstElementChild.childElementCount >= 2)) return false;
    let c = el.firstElementChild;
    for (let depth = 0; c && depth < 2; depth++) {
      if (HEADINGS.has(c.localName)) return !!headingSeg(c);
      if (c.previousSibling && c.previousSibling.nodeType === 3 && ws(c.previousSibling.textContent)) return false;
      c = c.firstElementChild;
    }
    return false;
  }
  function sectionHeading(el) {
    if (el.childElementCount < 2) return '';
    const h = leadingHeading(el);
    return h ? headingSeg(h) : '';
  }
  // Role words say what a control does; a container named by one (a buy-box form with the id
  // "add-to-cart") would lend it to every field inside (a colour, a quantity, an upsell).
  const ROLE_SEG = /(^|_)(add_to_(cart|bag|basket|trolley)|buy_now|buy_it_now|view_product)(_|$)/;
  const scopeSeg = (seg) => (seg && ROLE_SEG.test(seg) ? '' : seg);
  function ownSegment(el, tag, inItem) {
    if (overrideOf.has(el)) return overrideOf.get(el);
    const role = (el.getAttribute('role') || '').toLowerCase();
    const label = attr(el, 'aria-label') || byIds(el.getAttribute('aria-labelledby'), el);
    if (tag === 'header' && !el.closest('article,section,main') || role === 'banner') return 'header';
    if (tag === 'footer' && !el.closest('article,section') || role === 'contentinfo') return 'footer';
    if (tag === 'nav' || role === 'navigation') return slug(label, 3, 24) || 'nav';
    if (tag === 'aside' || role === 'complementary') return slug(label, 3, 24) || 'sidebar';
    if (tag === 'dialog' || role === 'dialog' || role === 'alertdialog' || modalSeg.has(el)) return dialogSeg(el);
    if (role === 'search') return 'search_bar';
    if (tag === 'form') {
      const inputs = el.querySelectorAll('input:not([type=hidden]),select,textarea');
      const searchy = Array.from(inputs).some((i) => i.type === 'search' || isSearchy(i));
      if (searchy && inputs.length <= 4) return 'search_bar';
      return slug(label, 3, 24) || readable(el.getAttribute('name')) || readable(el.id) || '';
    }
    if (tag === 'fieldset') {
      const lg = el.querySelector(':scope > legend');
      return slug(label || (lg ? lg.textContent : ''), 3, 24);
    }
    if (label && (tag === 'section' || tag === 'article' || tag === 'ul' || tag === 'ol' || tag === 'table' ||
        ['region', 'group', 'radiogroup', 'tablist', 'list', 'menu', 'menubar', 'toolbar', 'listbox', 'tree'].includes(role))) {
      return slug(label, 3, 24);
    }
    // A short heading leading a container names a section ("Brand", "Size"); a long one is a
    // title (products), and a heading that is itself a link is an item's title, not a section.
    if (tag !== 'body' && tag !== 'main') return sectionHeading(el);
    return '';
  }

  // ---- frames and shadow roots --------------------------------------------------------------
  const CLOSED = Symbol.for('shop_r1.closed_shadow_hosts');
  let closedHosts = window[CLOSED] || null;  // the current document's (shadow_hook.js)
  const unreadable = [];
  // The children a host renders: its open shadow root's, or a slot's assigned nodes (else the
  // slot's fallback content); null for an ordinary element, whose own children are walked.
  const flatChildren = (el) => {
    if (el.shadowRoot) return el.shadowRoot.childNodes;
    if (el.localName === 'slot') {
      const assigned = el.assignedNodes({ flatten: true });
      return assigned.length ? assigned : el.childNodes;
    }
    return null;
  };
  const hostLabel = (el) => el.localName + (el.id ? '#' + el.id : '');
  const originOf = (src) => { try { return new URL(src, location.href).origin; } catch (e) { return ''; } };
  const note = (text, dist) => ({ tag: 'div', attrs: null, children: [text], dist, actionable: false });

  // ---- the walk -----------------------------------------------------------------------------
  const records = [];          // one per interactable, in document order
  const productItems = [];     // the items of product lists, as the catalogue crawl reads them
  let nodeCount = 0;
  const sigOf = (el) => el.localName + '.' + ((el.getAttribute('class') || '').trim().split(/\s+/)[0] || '');

  // Text of a control's subtree (visible text, image alts when no text); headings seen inside are
  // reported to the innermost list item, whose title they may be.
  function collectText(el, ctx, out) {
    const flat = el.shadowRoot || el.localName === 'slot' ? flatChildren(el) : null;
    for (let i = 0, c = flat ? flat[0] : el.firstChild; c; c = flat ? flat[++i] : c.nextSibling) {
      if (c.nodeType === 3) { out.push(c.textContent); continue; }
      if (c.nodeType !== 1) continue;
      const tag = c.localName;
      if (tag === 'slot') { collectText(c, ctx, out); continue; }
      if (tag === 'svg' && visible(c)) {  // an icon: its title or label says what it is
        const t = attr(c, 'aria-label') || (c.querySelector('title') ? ws(c.querySelector('title').textContent) : '');
        if (t) out.alts.push(t);
        continue;
      }
      if (SKIP.has(tag) || !visible(c)) continue;
      if (tag === 'img') { if (c.alt) out.alts.push(c.alt); continue; }
      if (tag === 'br') { out.push(' '); continue; }
      if (HEADINGS.has(tag) && ctx.item) { ctx.item.headings.push(ws(c.textContent)); if (tag === 'h1') ctx.item.h1 = true; }
      collectText(c, ctx, out);
    }
  }

  function register(el, tag, kind, ctx, text, labelHint) {
    const r = el.getBoundingClientRect();
    const type = tag === 'input' ? (el.type || 'text').toLowerCase() : '';
    const rec = {
      el, tag, kind, text, scopes: ctx.scopes, item: ctx.item,
      label: controlLabel(el, tag, labelHint || text), name: '',
      inViewport: inViewport(r), dist: distOf(r),
      disabled: !!el.disabled || el.getAttribute('aria-disabled') === 'true',
      options: tag === 'select' ? Array.from(el.options).map((o) => ws(o.textContent)) : [],
      inputType: tag === 'input' ? type : (tag === 'textarea' ? 'textarea' : ''),
      href: tag === 'a' ? (el.getAttribute('href') || '') : '',
      override: overrideOf.get(el) || '',
      away,
      covered: isCovered(el, ctx),
    };
    records.push(rec);
    if (ctx.item) ctx.item.controls.push(rec);
    return rec;
  }

  function walkChildren(el, ctx) {
    const out = [];
    const flat = el.shadowRoot || el.localName === 'slot' ? flatChildren(el) : null;
    const wasAway = away;
    if (flat && el.shadowRoot) away = true;
    // Repeated siblings (same tag + first class) may be the items of a result list.
    const kids = flat ? Array.prototype.filter.call(flat, (n) => n.nodeType === 1) : el.children;
    let groups = null;
    // Rows of a list or table count from two (a search with two hits), other blocks from three.
    const pairs = new Set();
    const least = (sig) => (/^(li|tr)\./.test(sig) || pairs.has(sig) ? 2 : 3);
    if (kids.length >= 2) {
      const counts = new Map();
      for (const k of kids) { const s = sigOf(k); counts.set(s, (counts.get(s) || 0) + 1); }
      // Two priced blocks with a control each are two product cards (a filter left two results).
      const cardPair = (s) => Array.prototype.filter.call(kids, (k) => sigOf(k) === s)
        .every((k) => k.querySelector('a[href],button') && PRICE.test(textOutsideControls(k)));
      for (const [s, n] of counts) {
        if (n >= least(s) || (n === 2 && cardPair(s))) { (groups = groups || new Map()).set(s, []); if (n === 2) pairs.add(s); }
      }
    }
    let listScope = null;
    if (groups) listScope = { seg: '', pending: 'results', el };
    // Headings among the children open sections that run to the next heading of the same or a
    // higher level, or to the end of this element: "New arrivals" names the tiles after it, not
    // the "Staff picks" after the next h2. This element's own leading heading (its scope, set
    // by walk) ends the same way.
    const outer = ctx.scopes;
    const last = outer[outer.length - 1];
    let own = last && last.el === el && last.level ? last : null;  // this element's leading heading
    const above = own ? outer.slice(0, -1) : outer;
    const stack = [];
    const scoped = () => Object.assign({}, ctx, {
      scopes: (own ? outer : above).concat(stack.filter((h) => h.seg)) });
    ctx = scoped();
    for (let i = 0, c = flat ? flat[0] : el.firstChild; c; c = flat ? flat[++i] : c.nextSibling) {
      if (c.nodeType === 3) {
        const t = ws(c.textContent);
        if (t) {
          out.push(t);
          if (ctx.item && PRICE.test(t)) ctx.item.priced = true;
        }
        continue;
      }
      if (c.nodeType !== 1) continue;
      const h = headingOf(c);
      if (h && !(own && h === own.lead)) {
        const level = levelOf(h);
        if (own && level <= own.level) own = null;
        while (stack.length && stack[stack.length - 1].level >= level) stack.pop();
        // An h1 is the page's title: it ends sections but names none of what follows it.
        stack.push({ seg: level === 1 ? '' : scopeSeg(headingSeg(h)), level, el: c });
        ctx = scoped();
      }
      let childCtx = ctx;
      if (groups && groups.has(sigOf(c)) && !NATIVE.has(c.localName) && !opensWithSection(c)) {
        const item = { seg: '', headings: [], controls: [], alts: [], el: c, isItem: true };
        groups.get(sigOf(c)).push(item);
        // The `results` scope is the items' own, not their siblings' (a facet rail beside them).
        childCtx = Object.assign({}, ctx, { scopes: ctx.scopes.concat([listScope, item]), item });
      }
      const res = walk(c, childCtx);
      for (const r of res) out.push(r);
    }
    away = wasAway;
    if (closedHosts && closedHosts.has(el)) {
      const r = el.getBoundingClientRect();
      unreadable.push({ kind: 'closed_shadow_root', where: hostLabel(el) });
      out.push(note(`[closed shadow root ${hostLabel(el)}: its content cannot be read or used]`, distOf(r)));
    }
    if (groups) {
      let anyProducts = false;
      for (const [sig, items] of groups) {
        // A result card holds a few controls; a page region with dozens is a section, not an item.
        // A price split over elements ("$<b>10</b><span>.90</span>") is read as the card shows it,
        // from the words outside its controls (a facet link "$25 to $50" is no item's price).
        for (const it of items) if (!it.priced && it.controls.length && PRICE.test(textOutsideControls(it.el))) it.priced = true;
        const titled = items.filter((it) => it.controls.length >= 1 && it.controls.length <= 8 &&
          (it.headings.length > 0 || it.alts.length > 0 || it.controls.length >= 2 || pricedItem(it)));
        const withControls = items.filter((it) => it.controls.length >= 1).length;
        if (titled.length < least(sig) || titled.length * 2 < withControls) continue;
        // Items are products when most show a price or a title heading (not the page's own h1:
        // the columns of an item page are not results). Facets with star images, or category
        // cards, are items too, but their links are not `view_product` and no `results` scope.
        const products = titled.filter((it) => pricedItem(it) || (it.headings.length > 0 && !it.h1));
        const isProducts = products.length >= least(sig) && products.length * 2 >= titled.length;
        if (isProducts) anyProducts = true;
        for (const it of titled) {
          it.product = isProducts && products.includes(it);
          // An item's title: its heading, else its longest link, else (a product card whose only
          // control is "Add to cart") its most prominent words, else a control that does not name
          // an action; never "Add to cart" while anything else names the item.
          const longest = (texts) => texts.reduce((a, b) => (b.length > a.length ? b : a), '');
          let title = longest(it.headings);
          if (!title) title = longest(it.controls.filter((r) => r.tag === 'a').map((r) => r.text));
          if (!title && pricedItem(it)) title = prominentText(it.el);
          if (!title) title = longest(it.controls.map((r) => r.text).filter((t) => !ROLE_SEG.test(slug(t, 5, 32))));
          if (!title) title = it.alts[0] || '';
          if (!title) title = longest(it.controls.map((r) => r.text));
          it.title = title;
          it.seg = slug(title, 6, 40);
          it.active = !!it.seg;
          if (it.product && it.active) productItems.push(it);
        }
      }
      if (anyProducts && !outer.some((s) => s.el === el && s.seg)) listScope.seg = listScope.pending;
    }
    return out;
  }

  function textOutsideControls(root) {
    const out = [];
    const tw = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = tw.nextNode(); n; n = tw.nextNode()) {
      const c = n.parentElement && n.parentElement.closest('a,button,select,textarea,label,option,[role=button]');
      if (!(c && root.contains(c))) out.push(n.textContent);
    }
    return ws(out.join(''));
  }
  // The largest words of an item that are not a control's, a price or a count: a card's title
  // as a person picks it out ("White T-shirt Gucci" over "Free shipping" and "$10.90").
  function prominentText(root) {
    let best = '', bestSize = 0;
    const tw = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = tw.nextNode(); n; n = tw.nextNode()) {
      const p = n.parentElement;
      const t = ws(n.textContent);
      if (!p || !t || t.length > 120 || !/\p{L}{2}/u.test(t.replace(PRICE_ALL, ' '))) continue;
      const c = p.closest('a,button,select,textarea,label,option,[role=button]');
      if (c && root.contains(c)) continue;
      if (!visible(p)) continue;
      const size = parseFloat(getComputedStyle(p).fontSize) || 0;
      if (size > bestSize) { best = t; bestSize = size; }
    }
    return best;
  }

  // A same-origin frame's body is walked in place, under the frame's title; any other frame
  // (cross-origin, or not loaded) is a note. Frames too small to show anything are skipped.
  function walkFrame(el, ctx) {
    if (!visible(el)) return [];
    const r = el.getBoundingClientRect();
    if (r.width < 16 || r.height < 16) return [];
    const title = attr(el, 'title') || attr(el, 'name') || attr(el, 'aria-label');
    let doc = null;
    try { doc = el.contentDocument; } catch (e) { doc = null; }
    if (!doc || !doc.body) {
      const origin = originOf(el.getAttribute('src') || '');
      unreadable.push({ kind: 'cross_origin_frame', where: [origin, title].filter(Boolean).join(' ') });
      return [{ tag: 'iframe', attrs: Object.assign(title ? { title } : {}, origin ? { src: origin } : {}),
        children: ['[cross-origin frame: its content cannot be read or used]'], dist: distOf(r), actionable: false }];
    }
    const saved = [offX, offY, away, closedHosts];
    offX += r.left + el.clientLeft; offY += r.top + el.clientTop; away = true;
    closedHosts = (doc.defaultView && doc.defaultView[CLOSED]) || null;
    const seg = slug(title, 3, 24) || 'frame';
    const children = walkChildren(doc.body, Object.assign({}, ctx, { scopes: ctx.scopes.concat([{ seg, el }]) }));
    [offX, offY, away, closedHosts] = saved;
    return children.length ? [{ tag: 'div', attrs: null, children, dist: distOf(r), actionable: false }] : [];
  }

  function walk(el, ctx) {
    const tag = el.localName;
    if (!ctx.inModal && modalSeg.has(el)) return [];  // walked first, as the dialog
    if (tag === 'iframe' || tag === 'frame') return walkFrame(el, ctx);
    if (tag === 'slot') return walkChildren(el, ctx);  // display: contents; its nodes are the content
    if (SKIP.has(tag)) return [];
    if (tag === 'br') return [];
    if (tag === 'img') {
      if (ctx.item && el.alt) ctx.item.alts.push(el.alt);
      return [];
    }
    if (!visible(el)) return [];
    // A fixed layer moved out of the viewport (a closed slide-in drawer) cannot be scrolled to.
    if (el.offsetParent === null && !away && tag !== 'body' && getComputedStyle(el).position === 'fixed') {
      const r = el.getBoundingClientRect();
      if (r.right <= 0 || r.left >= vw || r.bottom <= 0 || r.top >= vh) return [];
    }
    nodeCount++;

    if (HEADINGS.has(tag) && ctx.item) { ctx.item.headings.push(ws(el.textContent)); if (tag === 'h1') ctx.item.h1 = true; }
    const kind = interactableKind(el, tag);
    if (kind) {
      const leafy = NATIVE.has(tag) || tag === 'label' || !el.querySelector('a[href],button,input,select,textarea,[role=button],[role=link],[onclick]');
      if (leafy) {
        const parts = []; parts.alts = [];
        if (tag !== 'select' && tag !== 'input' && tag !== 'textarea') collectText(el, ctx, parts);
        let text = ws(parts.join(' '));
        // Text that says nothing by itself ("& up" after four star images) is read with the images.
        // A count beside an icon (a cart's badge "0") is the icon's state, not its name.
        const hint = parts.alts.length && text && !/\p{L}/u.test(text) ? ws(parts.alts.join(' ')) : '';
        if (parts.alts.length && !/[a-z]{3}/i.test(text)) text = ws(parts.alts.join(' ') + ' ' + text);
        if (tag === 'input' && /^(submit|button|reset)$/.test(el.type)) text = ws(el.value);
        const r = el.getBoundingClientRect();
        if (r.width * r.height === 0 && !text && tag !== 'input') return [];
        const rec = register(el, tag, kind, ctx, text, hint);
        return [emitControl(el, tag, rec)];
      }
      // A generic clickable wrapping other controls (a card with onclick): named, children kept.
      const rec = register(el, tag, kind, ctx, ws(el.textContent).slice(0, 80));
      const children = walkChildren(el, ctx);
      return [{ tag: 'div', attrs: { name: rec }, children, dist: rec.dist, actionable: true }];
    }

    const seg = scopeSeg(ownSegment(el, tag, !!ctx.item));
    let childCtx = ctx;
    if (seg) {
      const scope = { seg, el };
      const lead = !overrideOf.has(el) && leadingHeading(el);
      if (lead && headingSeg(lead) === seg) { scope.lead = lead; scope.level = levelOf(lead); }
      childCtx = Object.assign({}, childCtx, { scopes: ctx.scopes.concat([scope]) });
    }
    // Layout tables (role=presentation) are structure only: their rows and cells are unwrapped.
    let layoutTable = ctx.layoutTable;
    if (tag === 'table') {
      const role = (el.getAttribute('role') || '').toLowerCase();
      layoutTable = role === 'presentation' || role === 'none';
      childCtx = Object.assign({}, childCtx, { layoutTable });
    }
    const children = walkChildren(el, childCtx);
    if (!children.length) return [];
    if (layoutTable && /^(table|thead|tbody|tfoot|tr|td|th)$/.test(tag)) return children;
    if (KEEP.has(tag) || (tag === 'div' || tag === 'p' || tag === 'section' || tag === 'article') && children.some((c) => typeof c === 'string')) {
      if (INLINE.has(tag)) return children;
      const r = el.getBoundingClientRect();
      const outTag = KEEP.has(tag) ? tag : (tag === 'p' ? 'p' : 'div');
      return [{ tag: outTag, attrs: null, children, dist: distOf(r), actionable: false }];
    }
    return children; // purely structural wrapper: unwrap
  }

  // Page chrome: the site header and footer, navigation and sidebars. Under a tight token budget
  // their controls go before the main content's (the results a shopper came for), except the
  // search field and its submit button, which are how most shoppers start.
  const CHROME = 'nav,aside,[role=navigation],[role=complementary],[role=banner],[role=contentinfo]';
  function isChrome(el, tag) {
    if ((tag === 'input' && el.type !== 'checkbox' && el.type !== 'radio') ||
        ((tag === 'button' || el.type === 'submit') && el.closest('form,[role=search]'))) return false;
    if (el.closest(CHROME)) return true;
    const h = el.closest('header');
    if (h && !h.closest('article,section,main')) return true;
    const f = el.closest('footer');
    return !!(f && !f.closest('article,section'));
  }

  function emitControl(el, tag, rec) {
    const a = { name: rec };
    let children = [];
    let outTag = NATIVE.has(tag) ? tag : (rec.kind === 'input' ? 'input' : 'button');
    if (outTag === 'summary' || outTag === 'option') outTag = 'button';
    if (tag === 'input') {
      const type = rec.inputType;
      a.type = type;
      if (type === 'checkbox' || type === 'radio') {
        if (el.checked) a.checked = '';
      } else if (TEXT_INPUTS.has(type) || type === '') {
        if (el.value) a.value = el.value.slice(0, 200);
        if (el.placeholder) a.placeholder = ws(el.placeholder);
      } else if (rec.text) {
        a.value = rec.text;
      }
    } else if (tag === 'textarea') {
      if (el.value) children = [el.value.slice(0, 500)];
      if (el.placeholder) a.placeholder = ws(el.placeholder);
    } else if (tag === 'select') {
      // Each choice is named `<select>.<option slug>` (envs.observation.option_name): the policy
      // picks a size with a click on that name, like any other control.
      const optSlug = (t) => t.toLowerCase().replace(/[^0-9a-z]+/g, '_').replace(/^_+|_+$/g, '') || 'option';
      // Two choices with one label ("1" in a quantity list twice) are told apart by their value
      // (which the executor also matches), else by a suffix no label spells.
      const used = new Set();
      rec.optionSlugs = [];
      children = Array.from(el.options).map((o) => {
        const label = ws(o.textContent);
        let os = optSlug(label);
        if (used.has(os)) {
          const byValue = optSlug(o.value || '');
          if (o.value && !used.has(byValue)) os = byValue;
          else { let n = 2; while (used.has(`${os}_copy_${n}`)) n++; os = `${os}_copy_${n}`; }
        }
        used.add(os);
        rec.optionSlugs.push(os);
        // Names are assigned after the walk: keep the record, resolve it in fix() below.
        const oa = { optionOf: rec, optSlug: os };
        if (o.selected) oa.selected = '';
        return { tag: 'option', attrs: oa, children: [label], dist: rec.dist, actionable: false };
      });
    } else if (rec.kind === 'input') {
      if (rec.text) children = [rec.text];
    } else {
      if (rec.text) children = [rec.text];
      else if (rec.label) a['aria-label'] = rec.label;
    }
    if (rec.disabled) a.disabled = '';
    if (rec.covered) a.covered = '';
    const node = { tag: outTag, attrs: a, children, dist: rec.dist, actionable: true };
    if (isChrome(el, tag)) node.chrome = true;
    return node;
  }


  // ---- modal dialogs and overlays -----------------------------------------------------------
  // What a person sees first: an open modal -- an ARIA dialog with aria-modal, a <dialog> opened
  // with showModal(), or, with no ARIA at all, a fixed layer with a z-index that covers most of
  // the viewport -- sits over the page, and nothing under it can be clicked until it is answered
  // or closed (a consent wall, a newsletter pop-up). The topmost one is found here, before the
  // walk: it is walked first and emitted as <dialog name="SEG">, its controls named under SEG,
  // and every control outside it is marked covered, unless a hit test at its centre reaches it
  // anyway (a header drawn above the backdrop). Overlays are found by hit-testing a 5x5 grid of
  // the viewport, so they are recognised whatever language or markup they use.
  const modalSeg = new Map();  // modal root -> its name segment
  let modalRoots = [];         // the open modal's root (its box, or the overlay that holds the box)
  let modalBackdrop = null;    // an empty overlay drawn under the box, which catches the clicks
  // Whether the modal blocks the whole page (a backdrop or a box over most of the viewport, or a
  // native modal <dialog>, which makes the rest inert), or only what it overlaps (a bar that says
  // aria-modal but leaves the page usable): then only a hit test can tell what is covered.
  let modalBlocks = false;
  const CONTROL_SEL = 'a[href],button,input:not([type=hidden]),select,textarea,[role=button],[role=link],[onclick]';
  const isTop = (n) => !n || n === document.body || n === document.documentElement;
  const onScreen = (r) => Math.max(0, Math.min(r.right, vw) - Math.max(r.left, 0)) *
    Math.max(0, Math.min(r.bottom, vh) - Math.max(r.top, 0));
  const zIndexOf = (n) => { const z = parseInt(getComputedStyle(n).zIndex, 10); return isNaN(z) ? 0 : z; };
  // The layer an element is painted in: its outermost fixed ancestor-or-self, or an absolutely
  // placed one with a z-index; null for the page's flow.
  const layered = new Map();  // element -> does it start a layer (memo: grid points share ancestors)
  function startsLayer(n) {
    let v = layered.get(n);
    if (v === undefined) {
      const st = getComputedStyle(n);
      v = st.position === 'fixed' || (st.position === 'absolute' && st.zIndex !== 'auto');
      layered.set(n, v);
    }
    return v;
  }
  function layerOf(n) {
    let found = null;
    for (; n && !isTop(n); n = n.parentElement) if (startsLayer(n)) found = n;
    return found;
  }
  const hasContent = (n) => !!ws(n.textContent) || !!n.querySelector(CONTROL_SEL);
  // A dialog is named by what it asks: consent and newsletter prompts by their kind, in any of
  // the languages below, so a policy learns one name for them; others by their label, id or title.
  const CONSENT_CUE = /cookie|consent|einwillig|consentement|\bgdpr\b|\brgpd\b|\bdsgvo\b|traceurs|privacidad/i;
  const NEWSLETTER_CUE = /newsletter|subscribe|abonnier|abonnez|inscri(?:vez|ption|re)|suscr[ií]b|sign up for (?:our )?e-?mails/i;
  function dialogSeg(el) {
    const label = attr(el, 'aria-label') || byIds(el.getAttribute('aria-labelledby'), el);
    const text = label || ws(el.textContent).slice(0, 600);
    if (CONSENT_CUE.test(text)) return 'cookie_consent';
    if (NEWSLETTER_CUE.test(text)) return 'newsletter';
    if (label) return slug(label, 3, 24) || 'dialog';
    // Else its title: a heading, or the short bold line most dialogs open with ("Choose your country").
    const h = el.querySelector('h1,h2,h3,h4,h5,h6') || Array.from(el.querySelectorAll('b,strong,[class*=title]'))
      .find((n) => { const t = ws(n.textContent); return t && t.split(' ').length <= 5 && !n.closest(CONTROL_SEL); });
    return readable(el.id) || (h && slug(h.textContent, 3, 24)) || 'dialog';
  }
  function findModal() {
    const cands = [];
    for (const d of document.querySelectorAll('dialog[open],[role=dialog],[role=alertdialog],[aria-modal=true]')) {
      if (!visible(d) || onScreen(d.getBoundingClientRect()) <= 0) continue;
      let native = false;
      try { native = d.matches(':modal'); } catch (e) { native = false; }
      if (native || d.getAttribute('aria-modal') === 'true') cands.push(d);
    }
    // Overlays: a layer with a z-index hit at many grid points that covers most of the viewport.
    const hits = new Map();
    const FR = [0.1, 0.3, 0.5, 0.7, 0.9];
    for (const fx of FR) for (const fy of FR) {
      const L = layerOf(document.elementFromPoint(fx * vw, fy * vh));
      if (L) hits.set(L, (hits.get(L) || 0) + 1);
    }
    let big = null;
    for (const [L, n] of hits) {
      if (n < 10 || zIndexOf(L) < 1 || onScreen(L.getBoundingClientRect()) < 0.5 * vw * vh) continue;
      if (!big || n > hits.get(big)) big = L;
    }
    if (big) {
      if (hasContent(big)) cands.push(big);
      else {
        modalBackdrop = big;  // a backdrop: the box is a layer of its own drawn above it (hit on the grid, or a sibling)
        const zb = zIndexOf(big);
        const parts = new Set(Array.from(hits.keys()).filter((L) => L !== big));
        for (const sib of big.parentElement ? big.parentElement.children : []) if (sib !== big) parts.add(sib);
        for (const L of parts) {
          if (layerOf(L) === L && zIndexOf(L) >= zb && visible(L) && onScreen(L.getBoundingClientRect()) > 0 &&
              hasContent(L) && !cands.includes(L)) cands.push(L);
        }
      }
    }
    if (!cands.length) return [];
    // The topmost: the one a click at its own centre reaches; of several, the last drawn.
    const onTop = cands.filter((c) => {
      const r = c.getBoundingClientRect();
      const x = Math.min(Math.max((Math.max(r.left, 0) + Math.min(r.right, vw)) / 2, 0), vw - 1);
      const y = Math.min(Math.max((Math.max(r.top, 0) + Math.min(r.bottom, vh)) / 2, 0), vh - 1);
      const h = document.elementFromPoint(x, y);
      return h && c.contains(h);
    });
    const pool = (onTop.length ? onTop : cands).slice().sort((a, b) =>
      (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
    let root = pool[pool.length - 1];
    // An outer dialog that holds the chosen one is the same dialog.
    for (const c of cands) if (c !== root && c.contains(root)) root = c;
    // An app shell drawn as one fixed layer is the page, not something over it.
    if (root.querySelector('main,[role=main]')) return [];
    let native = false;
    try { native = root.matches(':modal'); } catch (e) { native = false; }
    modalBlocks = !!big || native || onScreen(root.getBoundingClientRect()) >= 0.5 * vw * vh;
    let outside = false;
    for (const c of document.querySelectorAll(CONTROL_SEL)) {
      if (!root.contains(c) && visible(c)) { outside = true; break; }
    }
    return outside ? [root] : [];
  }
  modalRoots = findModal();
  for (const root of modalRoots) modalSeg.set(root, dialogSeg(root));
  // A control outside the modal is covered unless a click at its centre would reach it.
  function isCovered(el, ctx) {
    if (!modalRoots.length || ctx.inModal) return false;
    if (away) return modalBlocks;
    const r = el.getBoundingClientRect();
    if (!inViewport(r)) return modalBlocks;
    const x = Math.min(Math.max((Math.max(r.left, 0) + Math.min(r.right, vw)) / 2, 0), vw - 1);
    const y = Math.min(Math.max((Math.max(r.top, 0) + Math.min(r.bottom, vh)) / 2, 0), vh - 1);
    const h = document.elementFromPoint(x, y);
    return !(h && (h === el || el.contains(h)));
  }

  const body = document.body || document.documentElement;
  // Raw size is taken before stamping, so it measures the page as served + scripted.
  const rawSource = (document.doctype ? '<!DOCTYPE html>' : '') + document.documentElement.outerHTML;
  const rawBytes = new TextEncoder().encode(rawSource).length;
  const rawHtml = keepRaw ? rawSource : null;
  const first = [];
  for (const root of modalRoots) {
    // The dialog's own title heading names the dialog, not a section inside it.
    let lead = null;
    for (const c of root.children) { lead = headingOf(c); if (lead) break; }
    const scope = { seg: modalSeg.get(root), el: root };
    if (lead) { scope.lead = lead; scope.level = levelOf(lead); }
    const kids = walkChildren(root, { scopes: [scope], item: null, inModal: true });
    if (kids.length) first.push({ tag: 'dialog', attrs: { name: scope.seg }, children: kids, dist: 0, actionable: false });
  }
  const tree = { tag: 'body', attrs: null, children: first.concat(walkChildren(body, { scopes: [], item: null })), dist: 0,
    actionable: false };

  // ---- names --------------------------------------------------------------------------------
  const FALLBACK = { a: 'link', button: 'button', select: 'select', textarea: 'text_input', summary: 'toggle' };
  for (const rec of records) {
    if (rec.override) { rec.name = rec.override; continue; }
    let segs = rec.scopes.filter((s) => s.seg && (!s.isItem || s.active)).map((s) => s.seg);
    // "results" then "results_pagination_page" reads as "results.pagination_page"
    segs = segs.map((s, i) => (i > 0 && s.startsWith(segs[i - 1] + '_') ? s.slice(segs[i - 1].length + 1) : s));
    // nested scopes that say the same thing ("lebron_soldier_size_10_5" / "lebron_soldier_size") once
    segs = segs.filter((s, i) => i === 0 || !((segs[i - 1] + '_').startsWith(s + '_') || (s + '_').startsWith(segs[i - 1] + '_')));
    segs = segs.filter((s, i) => segs.indexOf(s) === i);  // "results.results" (a list in a list) once
    if (segs.length > MAX_SCOPES) segs = [segs[0]].concat(segs.slice(-(MAX_SCOPES - 1)));
    let token = '';
    const item = rec.item && rec.item.active ? rec.item : null;
    if (item && item.product && rec.tag === 'a') {
      const links = item.controls.filter((c) => c.tag === 'a');
      const titleLink = links.find((c) => c.text && item.title && c.text.includes(item.title));
      if (links.length === 1 || rec === titleLink || (titleLink && rec.href && rec.href === titleLink.href)) token = 'view_product';
    }
    // Counts in brackets ("Nike (12,513)") change between visits; they are not part of a name.
    let label = rec.label.replace(/\(\s*[\d.,+]+\s*\)/g, ' ');
    // "watch <item title>" inside the item titled so reads as "<item>.watch"
    if (item && item.title && label.includes(item.title) && label.replace(item.title, '').trim()) label = label.replace(item.title, ' ');
    if (!token) token = slug(label, 5, 32);
    if (!token && rec.kind === 'input') token = (rec.inputType === 'search' || isSearchy(rec.el)) ? 'search_input' : 'input';
    if (!token) token = rec.tag === 'input' ? (rec.inputType || 'input') : (FALLBACK[rec.tag] || 'button');
    if (segs.length && segs[segs.length - 1] === token && token !== 'view_product') segs.pop();
    // "see all - Brand" under "brand" reads as "brand.see_all"
    else if (segs.length && !rec.override) {
      const last = segs[segs.length - 1];
      const cut = ('_' + token + '_').replace('_' + last + '_', '_').replace(/^_+|_+$/g, '');
      if (cut && cut !== token) token = cut;
    }
    rec.name = segs.concat([token]).join('.');
  }
  // Break real ties in document order: first keeps the name, later ones get _2, _3, ...
  const taken = new Set(records.map((r) => r.name));
  const seen = new Map();
  for (const rec of records) {
    const n = rec.name;
    const k = (seen.get(n) || 0) + 1;
    seen.set(n, k);
    if (k === 1) continue;
    let i = k, cand;
    do { cand = `${n}_${i++}`; } while (taken.has(cand));
    taken.add(cand);
    rec.name = cand;
  }

  // ---- stamp (after all layout reads: attribute writes invalidate style) ---------------------
  const STAMPED = Symbol.for('shop_r1.stamped_away');  // stamps in frames and shadow roots
  for (const old of document.querySelectorAll('[data-sr1-name]')) old.removeAttribute('data-sr1-name');
  for (const old of window[STAMPED] || []) old.removeAttribute('data-sr1-name');
  const stampedAway = [];
  for (const rec of records) {
    rec.el.setAttribute('data-sr1-name', rec.name);
    if (rec.away) stampedAway.push(rec.el);
  }
  window[STAMPED] = stampedAway;
  for (const old of document.querySelectorAll('[data-sr1-dialog]')) old.removeAttribute('data-sr1-dialog');
  for (const root of modalRoots) root.setAttribute('data-sr1-dialog', modalSeg.get(root));
  if (modalRoots.length && modalBackdrop && !modalBackdrop.contains(modalRoots[0])) {
    modalBackdrop.setAttribute('data-sr1-dialog', modalSeg.get(modalRoots[0]));
  }

  // Replace record references in the tree by their names, depth-first.
  const fix = (node) => {
    if (typeof node === 'string') return;
    const a = node.attrs;
    if (a && a.name && typeof a.name === 'object') a.name = a.name.name;
    if (a && a.optionOf) {
      if (a.optionOf.name) a.name = `${a.optionOf.name}.${a.optSlug}`;
      delete a.optionOf;
      delete a.optSlug;
    }
    for (const c of node.children) fix(c);
  };
  fix(tree);

  return {
    url: location.href,
    title: document.title || '',
    tree,
    elements: records.map((r) => ({
      name: r.name, kind: r.kind, text: r.text || r.label, tag: r.tag, in_viewport: r.inViewport,
      disabled: r.disabled, options: r.options, input_type: r.inputType, dist: r.dist, covered: r.covered,
      option_names: (r.optionSlugs || []).map((os) => `${r.name}.${os}`),
    })),
    unreadable,
    // Product cards with their title, shown price and link (if any): a one-page shop's catalogue.
    items: productItems.map((it) => {
      const links = it.controls.filter((r) => r.tag === 'a' && r.href && !/^(javascript:|#)/i.test(r.href));
      const link = links.find((r) => r.text && r.text.includes(it.title)) || links[0];
      let url = '';
      try { url = link ? new URL(link.href, location.href).href : ''; } catch (e) { url = ''; }
      const price = ws(it.el.textContent).match(PRICE);
      return { title: it.title, price: price ? price[0] : '', url, names: it.controls.map((r) => r.name) };
    }),
    raw_html: rawHtml,
    raw_bytes: rawBytes,
    nodes: nodeCount,
    js_ms: performance.now() - t0,
  };
}
