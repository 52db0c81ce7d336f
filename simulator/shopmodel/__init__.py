"""What a storefront sells, learnt from the shop itself, and the intents and tasks drawn from it.

``outcomes`` (task verdicts from a trace) is imported from its module: it needs the report.
"""

from shop_r1.simulator.shopmodel.cache import is_loopback, load_catalogue
from shop_r1.simulator.shopmodel.catalogue import Catalogue, Category, CrawlStats, ListedItem, Product
from shop_r1.simulator.shopmodel.crawl import CrawlError, CrawlLimits, crawl
from shop_r1.simulator.shopmodel.intents import ShopIntent, draw_intent, intent_source
from shop_r1.simulator.shopmodel.tasks import (
    SuccessCondition,
    Task,
    TaskFileError,
    TaskRun,
    load_tasks,
    parse_tasks,
    start_url_of,
    task_shoppers,
    write_task_run,
)

__all__ = [
    "Catalogue", "Category", "CrawlError", "CrawlLimits", "CrawlStats", "ListedItem", "Product", "ShopIntent",
    "SuccessCondition", "Task", "TaskFileError", "TaskRun", "crawl", "draw_intent", "intent_source",
    "is_loopback", "load_catalogue", "load_tasks", "parse_tasks", "start_url_of", "task_shoppers",
    "write_task_run",
]
