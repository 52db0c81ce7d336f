// Installed before any page script (context.add_init_script, every frame): remembers the hosts of
// closed shadow roots. A closed root is invisible to page scripts by design (host.shadowRoot is
// null), so without this the reducer could not even say that part of the page is hidden from it.
// Only hosts are kept (a WeakSet: nothing is held alive); the roots themselves stay closed.
(() => {
  const key = Symbol.for('shop_r1.closed_shadow_hosts');
  if (window[key] || typeof Element === 'undefined' || !Element.prototype.attachShadow) return;
  const hosts = new WeakSet();
  Object.defineProperty(window, key, { value: hosts, enumerable: false });
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function attachShadow(init) {
    const root = attach.call(this, init);
    if (init && init.mode === 'closed') hosts.add(this);
    return root;
  };
})();
