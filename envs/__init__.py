"""Where shoppers act: browser sessions, the page reducer, the action executor, the bundled shop.

Nothing in here imports from ``simulator`` or ``training``: imports point downward only.
"""
