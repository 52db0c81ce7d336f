"""What a storefront sells, learnt from the shop itself: its catalogue (crawled over plain HTTP,
cached per origin) and the page model the crawl reads. Intents and tasks drawn from a catalogue
are the shoppers' side: ``shop_r1.personas.intents`` and ``shop_r1.personas.tasks``."""

from shop_r1.envs.storefront.cache import is_loopback, load_catalogue
from shop_r1.envs.storefront.catalogue import Catalogue, Category, CrawlStats, ListedItem, Product
from shop_r1.envs.storefront.crawl import CrawlError, CrawlLimits, crawl

__all__ = [
    "Catalogue", "Category", "CrawlError", "CrawlLimits", "CrawlStats", "ListedItem", "Product", "crawl",
    "is_loopback", "load_catalogue",
]
