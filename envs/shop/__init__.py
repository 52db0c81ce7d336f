"""The bundled mock storefront: an Amazon-shaped shop served by aiohttp on 127.0.0.1.

``server.run_in_thread(seed, port, layout)`` starts one in the background for tests and the
simulator, ``server.create_app(seed, layout)`` gives the aiohttp application and
``catalog.build_catalog(seed)`` the products. Import those modules directly: the package itself
re-exports nothing, so that using the catalogue never pays for importing aiohttp (~0.3 s).
"""
