"""Who writes a rationale: an OpenAI-compatible endpoint, a local model, or templates.

The model teachers reach their model through the simulator's LLM layer
(:mod:`shop_r1.simulator.agent.llm`): the same endpoint/key rules, chat client and loader the policies
use, so a teacher configured like a policy behaves like one.
"""

from __future__ import annotations

import asyncio
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shop_r1.envs.actions import Terminate, TypeAndSubmit
from shop_r1.envs.controls import ADD_TO_CART, BUY_NOW, CART_LINK, CHECKOUT, PLACE_ORDER, control_label
from shop_r1.simulator.agent.llm.chat import ChatClient, ChatRequestError
from shop_r1.simulator.agent.llm.endpoint import openai_endpoint
from shop_r1.simulator.agent.llm.loader import LoadedModel, load_for_generation
from shop_r1.simulator.agent.llm.models import resolve_model
from shop_r1.simulator.agent.llm.sampling import SamplingParams, seed_hash
from shop_r1.training.rationales.prompt import RationaleJob, TeacherError, short


class Teacher(ABC):
    """Writes one rationale for one job. ``model_id`` is part of the cache key."""

    name: str = "teacher"
    #: Whether answers are worth caching (a model call) or free to recompute (templates).
    cached: bool = True

    @property
    @abstractmethod
    def model_id(self) -> str: ...

    @abstractmethod
    async def write(self, job: RationaleJob) -> str:
        """The raw reply for ``job`` (cleaned by the caller); raise :class:`TeacherError`."""

    async def close(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"teacher": self.name, "model": self.model_id}


class OpenAITeacher(Teacher):
    """A teacher behind any OpenAI-compatible chat-completions endpoint."""

    name = "openai"

    def __init__(self, base_url: str | None, model: str, *, api_key: str | None = None,
                 concurrency: int = 4, max_retries: int = 3, timeout_s: float = 60.0,
                 temperature: float = 0.3, max_tokens: int = 96) -> None:
        endpoint = openai_endpoint(base_url, api_key)
        self.client = ChatClient(endpoint.base_url, model, api_key=endpoint.api_key, max_concurrency=concurrency,
                                 max_retries=max_retries, timeout_s=timeout_s)
        self.sampling = SamplingParams(temperature=temperature, max_tokens=max_tokens)

    @property
    def model_id(self) -> str:
        return f"openai:{self.client.model}"

    async def write(self, job: RationaleJob) -> str:
        try:
            result = await self.client.complete(job.messages, self.sampling)
        except ChatRequestError as exc:
            raise TeacherError(exc.code, str(exc)) from None
        return result.text

    async def close(self) -> None:
        await self.client.aclose()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "base_url": self.client.base_url, "temperature": self.sampling.temperature}


class TransformersTeacher(Teacher):
    """A local model folder as teacher (greedy decoding, one step at a time in a worker thread)."""

    name = "transformers"

    def __init__(self, model_dir: str | os.PathLike[str], *, max_new_tokens: int = 64, device: str | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.sampling = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        self.device = device
        self._loaded: LoadedModel | None = None
        self._lock = asyncio.Lock()

    @property
    def model_id(self) -> str:
        return f"transformers:{self.model_dir.resolve()}"

    def _generate(self, messages: list[dict[str, str]]) -> str:
        import torch  # optional heavy dependency: only a local teacher needs it

        if self._loaded is None:
            self._loaded = load_for_generation(self.model_dir, device=self.device)
        tok, model = self._loaded.tokenizer, self._loaded.model
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = {k: v.to(model.device) for k, v in ids.items()}
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=self.sampling.max_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    async def write(self, job: RationaleJob) -> str:
        async with self._lock:  # one generation at a time: the model is not shared across threads
            try:
                return await asyncio.to_thread(self._generate, job.messages)
            except Exception as exc:  # a model failure is this step's failure, not the run's
                raise TeacherError("generation_error", f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        self._loaded = None


# Cues of what an action does, for the template sentences. Cart and checkout controls are
# recognised by the shop-wide patterns of shop_r1.envs.controls (the one owner); the rest only
# choose wording and stay here.
_SEARCHY = re.compile(r"search|query|keyword|find", re.I)
_SORT = re.compile(r"sort|order.?by", re.I)
_REFINE = re.compile(r"filter|refine|refinement|categor|brand|price|rating|review|color|colour|size", re.I)
_NEXT = re.compile(r"next|page|more|load", re.I)
# A link to a product's reviews ("1,209 ratings", "See all reviews"), as opposed to a rating
# filter ("4 stars & up") -- which a name or label saying refine/filter/stars still marks.
_REVIEWS = re.compile(r"^\s*\d[\d.,\s]*(?:global\s+)?(?:ratings?|reviews?)\b|\b(?:see|read)\s+(?:all\s+)?"
                      r"(?:\w+\s+)?reviews\b|\bcustomer\s+reviews\b", re.I)
# A product's own option (its colour or size), chosen on its page, when no filter word says otherwise.
_VARIANT = re.compile(r"^(?:colou?r|size|style|pattern|capacity|option|variant)s?(?:$|[._])", re.I)
_FILTERISH = re.compile(r"filter|refine|stars?\b|&\s*up", re.I)
_BACK = re.compile(r"back|home|logo|continue.?shopping", re.I)
# At a word's start only: "customer_reviews" is not a "view" link.
_PRODUCT = re.compile(r"(?<![a-z])(?:product|item|view|title|result|detail)", re.I)


class TemplateTeacher(Teacher):
    """Templated first-person rationales from the action and the page, no model.

    The sentence is chosen by what the action does (search, open a product, refine, sort, add to
    cart, check out, stop) read from the element's name and label -- the same shop-agnostic cues a
    person would use -- and varied deterministically per (session, step) so the data is not one
    sentence repeated.
    """

    name = "template"
    cached = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @property
    def model_id(self) -> str:
        return "template:v2"

    def _pick(self, job: RationaleJob, options: Sequence[str]) -> str:
        return options[seed_hash(self.seed, job.session_id, job.step) % len(options)]

    async def write(self, job: RationaleJob) -> str:
        return self.sentence(job)

    def sentence(self, job: RationaleJob) -> str:
        a = job.action
        name = str(getattr(a, "name", "") or "")
        label = short(job.target_text or name.replace("_", " ").replace(".", " "), 60)
        cue = f"{name} {job.target_text}"
        control = control_label(name, job.target_text)
        goal = short(job.intent, 60) if job.intent else ""
        if isinstance(a, TypeAndSubmit):
            text = short(a.text, 60)
            if _SEARCHY.search(cue) or not cue.strip():
                return self._pick(job, [
                    f"I'm looking for {text}, so I'll search for it.",
                    f"Let me search for {text} and see what this store has.",
                    f"I'll type '{text}' into the search box to find what I need.",
                ])
            return self._pick(job, [
                f"I'll fill in the {label} field so I can move on.",
                f"The form needs my {label}, so I'll enter it.",
            ])
        if isinstance(a, Terminate):
            title = (job.title or "").lower()
            if any(w in title for w in ("confirm", "thank", "order placed", "receipt")):
                return self._pick(job, ["I've got what I came for, so I'm done.",
                                        "My order is through; I'll close the browser."])
            return self._pick(job, [
                "Nothing here is quite what I want, so I'll stop for now.",
                "I've seen enough for today; I'll leave without buying.",
                f"This isn't getting me closer to {goal or 'what I need'}, so I'll call it a day.",
            ])
        if ADD_TO_CART.search(control) or BUY_NOW.search(control):
            product = short(job.title, 50) or "this item"
            return self._pick(job, [
                f"{product} fits what I need, so I'll add it to my cart.",
                "This looks right for me and the price is fine, so into the cart it goes.",
            ])
        if CHECKOUT.search(control) or PLACE_ORDER.search(control):
            return self._pick(job, ["I have what I want in my cart, so I'll go to checkout.",
                                    "Time to finish up; I'll check out."])
        if CART_LINK.search(control):
            return self._pick(job, ["Let me check my cart before deciding.",
                                    "I want to see what's in my cart."])
        # The visible text and the name's own segment each on its own: the count must come first.
        if (_REVIEWS.search(job.target_text or "") or _REVIEWS.search(control_label(name))) \
                and not _FILTERISH.search(cue):
            return self._pick(job, ["Let me read what other buyers say in the reviews before I decide.",
                                    "I'll check the reviews to see if it holds up."])
        if _VARIANT.search(name) and not _FILTERISH.search(cue):
            return self._pick(job, [f"I'd want it in {label}, so I'll choose that.",
                                    f"{label} is the one for me; I'll select it."])
        if _SORT.search(cue):
            return self._pick(job, [f"I'll sort the results ({label}) to compare them more easily.",
                                    "Sorting these should bring the better options to the top for me."])
        if _REFINE.search(cue) and not _PRODUCT.search(name):
            return self._pick(job, [f"I'll narrow the results to {label} to cut down the list.",
                                    f"Filtering by {label} should leave only what suits me."])
        if _NEXT.search(cue) and not _PRODUCT.search(name):
            return self._pick(job, ["None of these is right yet, so I'll look at more results.",
                                    "Let me see the next page of results."])
        if _BACK.search(cue):
            return self._pick(job, ["I'll go back and look elsewhere.", "Let me start over from the main page."])
        if _PRODUCT.search(cue) or job.target_text:
            return self._pick(job, [
                f"'{label}' looks like a good match{' for ' + goal if goal else ''}, so I'll take a closer look.",
                f"I want to check the details of {label} before deciding.",
                f"{label} catches my eye; let me open it.",
            ])
        return self._pick(job, [f"I'll click {label} to see what it offers.",
                                f"Let me try {label}."])


def make_teacher(kind: str, *, base_url: str | None = None, model: str | None = None,
                 concurrency: int = 4, max_retries: int = 3, seed: int = 0) -> Teacher:
    """Build a teacher by name (``openai`` | ``transformers`` | ``template``)."""
    if kind == "template":
        return TemplateTeacher(seed=seed)
    if kind == "openai":
        if not model:
            raise ValueError("--teacher openai needs --model (the endpoint's model name)")
        return OpenAITeacher(base_url, model, concurrency=concurrency, max_retries=max_retries)
    if kind == "transformers":
        return TransformersTeacher(resolve_model(model))
    raise ValueError(f"unknown teacher {kind!r}; choose openai, transformers or template")


__all__ = ["OpenAITeacher", "Teacher", "TemplateTeacher", "TransformersTeacher", "make_teacher"]
