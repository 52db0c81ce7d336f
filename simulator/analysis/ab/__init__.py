"""A/B experiments: the same simulated shoppers on two builds of a storefront.

``design`` (arms, who shops where) · ``run`` (both arms at once) · ``analysis`` (run dirs ->
``ABResult``) · ``stats`` (intervals, tests, MDE) · ``gate`` (``--fail-if``) · ``html``
(``ab.html``) · ``experiment`` (all of it) · ``cli`` (``shop-r1 ab``).
"""
