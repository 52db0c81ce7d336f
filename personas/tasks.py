"""A UX team's own scenarios (``--tasks FILE``): each becomes a shopper, and each gets a verdict.

A file is a JSON or YAML list of tasks (or ``{"tasks": [...]}``)::

    - id: boots                      # optional; task-1, task-2, ... otherwise
      intent: a waterproof hiking boot in size 10, under $150
      start_url: /index.php?view=cat&c=footwear     # optional; relative to the shop
      success: {product_title_matches: "hiking boot", added_to_cart: true}   # optional

Success conditions are read from the trace after the run, with the same page classifier and
funnel rules as the report (a product page is one by its content, "added to cart" is a click on
an add-to-cart control or the session's outcome), so a task's verdict and the report's funnel
cannot disagree. All conditions given must hold. The run directory's ``tasks.json`` keeps the
tasks and which shopper (persona id) ran which task; ``run.json`` has each shopper's intent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shop_r1.personas.model import Persona

TASKS_FILE = "tasks.json"


class TaskFileError(ValueError):
    """A tasks file that cannot be used; the message names the file and the task."""


class SuccessCondition(BaseModel):
    """What counts as the task done. At least one condition; all given must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    product_title_matches: str | None = None  # a regex, searched case-insensitively in the title
    added_to_cart: bool | None = None

    @field_validator("product_title_matches")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return v

    @model_validator(mode="after")
    def _some(self) -> SuccessCondition:
        if self.product_title_matches is None and self.added_to_cart is None:
            raise ValueError("a success condition needs product_title_matches or added_to_cart")
        return self

    def describe(self) -> str:
        parts = []
        if self.product_title_matches is not None:
            parts.append(f"a product page titled /{self.product_title_matches}/")
        if self.added_to_cart is not None:
            parts.append("added to cart" if self.added_to_cart else "nothing added to cart")
        return " and ".join(parts)


class Task(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    id: str = Field(min_length=1)
    intent: str = Field(min_length=1)
    start_url: str | None = None
    success: SuccessCondition | None = None

    @field_validator("intent", "id")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


class TaskRun(BaseModel):
    """``tasks.json``: the tasks of a run and the persona id of every shopper that ran one."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    tasks: list[Task]
    shoppers: dict[str, str]  # persona_id -> task id


def parse_tasks(data: Any, where: str) -> list[Task]:
    """Validate decoded tasks; ids default to task-1, task-2 ... and must be unique."""
    if isinstance(data, dict) and set(data) == {"tasks"}:
        data = data["tasks"]
    if not isinstance(data, list) or not data:
        raise TaskFileError(f"{where}: expected a non-empty list of tasks (or {{\"tasks\": [...]}})")
    tasks: list[Task] = []
    for i, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise TaskFileError(f"{where}: task #{i + 1} must be an object with an intent, got {type(raw).__name__}")
        raw = {"id": f"task-{i + 1}", **raw}
        if not isinstance(raw["id"], str):
            raw["id"] = str(raw["id"])
        try:
            tasks.append(Task.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "task"
            raise TaskFileError(f"{where}: task #{i + 1} ({raw['id']}): {loc}: {err['msg']}") from exc
    ids = [t.id for t in tasks]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise TaskFileError(f"{where}: task ids must be unique; repeated: {', '.join(dupes)}")
    return tasks


def load_tasks(path: str | Path) -> list[Task]:
    """Tasks from a JSON or YAML file (by suffix; .json is JSON, anything else is read as YAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskFileError(f"{path}: cannot read tasks file: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise TaskFileError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise TaskFileError(f"{path}{at}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    return parse_tasks(data, str(path))


def start_url_of(tasks: Sequence[Task], shop_url: str) -> str:
    """The one start URL the tasks share (relative ones resolved against the shop).

    A run starts every shopper on one URL, so tasks asking for different start pages are an
    error here rather than silently started elsewhere; a start URL on another origin is too.
    """
    urls = {urljoin(shop_url, t.start_url) if t.start_url else shop_url for t in tasks}
    for url in urls:
        if urlsplit(url)[:2] != urlsplit(shop_url)[:2]:
            raise TaskFileError(f"task start URL {url} is not on the shop's origin {urlsplit(shop_url).netloc}")
    if len(urls) > 1:
        raise TaskFileError("the tasks ask for different start URLs (" + ", ".join(sorted(urls)) + "); one run "
                            "starts every shopper on the same page, so run such tasks in separate runs")
    return urls.pop()


def task_shoppers(tasks: Sequence[Task], personas: Sequence[Persona]) -> tuple[list[Persona], TaskRun]:
    """Shopper ``i`` runs task ``i % len(tasks)`` with persona ``i``; persona ids made unique
    (``#2``, ``#3`` on repeats) so every shopper's task can be found again from the trace."""
    out: list[Persona] = []
    shoppers: dict[str, str] = {}
    for i, persona in enumerate(personas):
        task = tasks[i % len(tasks)]
        pid, k = persona.persona_id, 1
        while pid in shoppers:
            k += 1
            pid = f"{persona.persona_id}#{k}"
        shoppers[pid] = task.id
        out.append(persona.model_copy(update={"persona_id": pid, "intent": task.intent}))
    return out, TaskRun(tasks=list(tasks), shoppers=shoppers)


def write_task_run(run: TaskRun, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / TASKS_FILE
    path.write_text(run.model_dump_json(indent=1, exclude_none=True), encoding="utf-8")
    return path
