"""The shop's search: a tokenizer for queries and listings, and a BM25 index over the catalogue.

The index is a precomputed view of the catalogue, built once at start-up so that a results page
costs a dictionary walk, not a scan of every product.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence

from shop_r1.envs.shop.products import Product

_STOPWORDS = frozenset(
    "a an and the for of to in on with by i want need looking some is are my me im i'm it that this "
    "under less than lower price dollars".split()
)
_TOKEN = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    """A deliberately tiny stemmer: plurals only (``batteries``, ``boxes``, ``headphones``)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, plural-stemmed tokens; ``Wi-Fi`` and ``wifi`` both work."""
    lowered = text.lower().replace("'", "")
    out: list[str] = []
    for word in _TOKEN.findall(lowered):
        if word not in _STOPWORDS:
            out.append(_stem(word))
    joined = re.sub(r"[^a-z0-9 ]", "", re.sub(r"[-/]", "", lowered))
    for word in joined.split():  # hyphenated words also indexed glued: "wi-fi" -> "wifi"
        if word not in _STOPWORDS and _stem(word) not in out:
            out.append(_stem(word))
    return out


class SearchIndex:
    """BM25 over each product's title, brand, category, type, attributes and colours.

    The brand and type are counted twice: "sony headphones" should put Sony headphones first
    even when another title happens to mention both words once. Scores are then scaled by the
    share of query words matched, as shoppers expect multi-word queries to narrow, not widen.
    """

    K1 = 1.2
    B = 0.75

    def __init__(self, products: Sequence[Product], category_names: dict[str, str]) -> None:
        self._products = tuple(products)
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._lengths: list[int] = []
        for idx, p in enumerate(self._products):
            fields = [p.title, p.brand, p.brand, p.product_type, p.product_type, category_names[p.category],
                      " ".join(v for _, v in p.attributes), " ".join(p.colors), p.id]
            counts: dict[str, int] = {}
            for tok in tokenize(" ".join(fields)):
                counts[tok] = counts.get(tok, 0) + 1
            self._lengths.append(sum(counts.values()))
            for tok, tf in counts.items():
                postings[tok].append((idx, tf))
        self._postings = dict(postings)
        n = len(self._products)
        self._avg_len = (sum(self._lengths) / n) if n else 1.0
        self._idf = {tok: math.log(1 + (n - len(ps) + 0.5) / (len(ps) + 0.5)) for tok, ps in self._postings.items()}

    def search(self, query: str) -> list[tuple[Product, float]]:
        """Every product sharing at least one token with the query, best first.

        Ties break on popularity (rating count) and then id, so the order is total and stable.
        """
        scores: dict[int, float] = defaultdict(float)
        matched: dict[int, int] = defaultdict(int)
        terms = list(dict.fromkeys(tokenize(query)))
        for tok in terms:
            for idx, tf in self._postings.get(tok, ()):
                norm = tf + self.K1 * (1 - self.B + self.B * self._lengths[idx] / self._avg_len)
                scores[idx] += self._idf[tok] * tf * (self.K1 + 1) / norm
                matched[idx] += 1
        # Coordination: a product matching every query word beats one matching a rare word twice.
        for idx in scores:
            scores[idx] *= matched[idx] / len(terms)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], -self._products[kv[0]].rating_count,
                                                         self._products[kv[0]].id))
        return [(self._products[i], s) for i, s in ranked]
