"""The token budget's search: the longest prefix of a text that fits a number of tokens.

:func:`~shop_r1.simulator.agent.prompt.render.build_prompt` decides *what* goes into a prompt under a
budget (the current page, then history newest first); this module answers the one numeric
question it asks over and over -- where to cut a page so that it fits -- with as few token counts
as it can, since a count of a 3k-token page takes ~20 ms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

TokenCounter = Callable[[str], int]


@lru_cache(maxsize=8)
def memoized_counter(counter: TokenCounter) -> TokenCounter:
    """``counter`` with a cache of recent texts. Each step of a session re-renders every earlier
    page; pages are kept as separate parts (see
    :func:`~shop_r1.simulator.agent.prompt.render.build_prompt`), so each page is counted
    once per session instead of once per step (a 3k-token page takes ~20 ms to count here)."""
    return lru_cache(maxsize=256)(counter)


def approximate_tokens(text: str) -> int:
    """Roughly one token per word and per punctuation mark."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def _last_fitting(positions: Sequence[int], fits: Callable[[int], bool], guess: int) -> int:
    """The largest index i with ``fits(positions[i])`` (-1 if none), for a monotone ``fits``.

    Starts from ``guess`` and gallops outwards to bracket the answer, then bisects: when the
    guess is good, only a few counts of about the budget's size are made, instead of a
    bisection over the whole (possibly much longer) text.
    """
    n = len(positions)
    if n == 0:
        return -1
    g = min(max(guess, 0), n - 1)
    step = max(1, n // 64)
    if fits(positions[g]):
        lo, hi = g, n
        probe = g + step
        while probe < n and fits(positions[probe]):
            lo, probe, step = probe, probe + step, step * 2
        hi = min(probe, n)
    else:
        lo, hi = -1, g
        probe = g - step
        while probe >= 0 and not fits(positions[probe]):
            hi, probe, step = probe, probe - step, step * 2
        lo = max(probe, -1)
    while hi - lo > 1:  # invariant: fits at lo (or lo == -1), not at hi (or hi == n)
        mid = (lo + hi) // 2
        if fits(positions[mid]):
            lo = mid
        else:
            hi = mid
    return lo


def truncate_to_tokens(text: str, max_tokens: int, count_tokens: TokenCounter) -> str:
    """The longest prefix of ``text`` within ``max_tokens``, preferably ending at a line end.

    Searches line ends first, starting where the text's own characters-per-token ratio says
    the cut should be; then, when the next line is long (a page without line breaks), the
    characters of that line.
    """
    if max_tokens <= 0:
        return ""
    total = count_tokens(text)
    if total <= max_tokens:
        return text

    def fits(end: int) -> bool:
        return count_tokens(text[:end]) <= max_tokens

    estimate = len(text) * max_tokens / total
    ends = [m.end() for m in re.finditer(r"\n", text)]
    guess = next((i for i, e in enumerate(ends) if e > estimate), len(ends)) - 1
    i = _last_fitting(ends, fits, guess)
    best = ends[i] if i >= 0 else 0
    nxt = text.find("\n", best)
    line_end = len(text) if nxt == -1 else nxt
    if line_end - best > 200:  # a long next line: fill the rest of the budget from it
        chars = range(best + 1, line_end + 1)
        guess = int(min(max(estimate, best + 1), line_end)) - best - 1
        j = _last_fitting(chars, fits, guess)
        if j >= 0:
            end = chars[j]
            tag_end = text.rfind(">", best, end)
            return text[: tag_end + 1] if tag_end >= best + (end - best) * 0.8 else text[:end]
    return text[:best]
