"""Rationale synthesis: a first-person "why" for every recorded action that lacks one.

Real shopping logs carry almost no rationales, but Shop-R1's SFT targets are
``{"rationale", "action"}``; the paper had a strong LLM write them. Here a *teacher* writes one
short first-person sentence per recorded step, given what the shopper saw (the same context a
policy reads, rendered by :mod:`shop_r1.simulator.prompt`) and the action the shopper took:

* ``openai``: any OpenAI-compatible chat-completions endpoint (OpenAI, a gateway, a local vLLM
  server), through the simulator's own client (:class:`shop_r1.simulator.policies.http_policy.ChatClient`:
  bounded retries with back-off on 429/5xx, timeouts, token accounting);
* ``transformers``: a local model folder;
* ``template``: no model at all -- templated sentences from the action and the page. It is what
  the benchmark's data uses, and the fallback when no teacher model is available.

The teacher's instructions live in one place, :data:`RATIONALE_PROMPT`.

Properties a long synthesis run over thousands of steps needs:

* **cached**: every answer is stored on disk under a hash of (prompt, model), one small file per
  answer written atomically, so a rerun -- also with a different output folder -- costs nothing;
* **resumable**: because each answer is cached the moment it arrives, a killed run (Ctrl-C, a
  crash, a lost connection) continues where it stopped when started again; the output trace is
  written only at the end, atomically, so there is never a half-written output;
* **rate-limited**: a token bucket (``rate`` requests per second, bursts up to ``burst``) in front
  of at most ``concurrency`` calls in flight;
* **honest about failures**: a step whose call failed for good keeps an empty rationale and is
  reported as ``session/step: code: message``; the run goes on.

Steps that already carry a rationale keep it unless ``overwrite=True``. Steps without an action
(the policy's answer could not be parsed) get none: there is nothing to explain.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shop_r1.simulator.replay import history_item, observation_from_step
from shop_r1.simulator.trace import RunInfo, TraceStep
from shop_r1.training.data import LoadedTrace, load_trace

log = logging.getLogger(__name__)

#: The teacher's instructions (the one place they live). Fields: ``persona`` (a paragraph, or a
#: neutral line), ``goal``, ``context`` (the session so far and the current page, as the policy
#: sees them), ``action`` (the recorded action's JSON) and ``target`` (what the named element is).
RATIONALE_PROMPT = """\
You are reconstructing the thoughts of a real person shopping online. Below is what they saw in \
this browsing session (simplified HTML of each page, with the actions they took), and the action \
they took next on the current page.

Shopper: {persona}
Their goal: {goal}

=== What they saw ===
{context}
=== End ===

The action they took on the current page: {action}
{target}
Write the one short sentence this shopper was thinking just before taking that action: first \
person ("I ..."), about why they did it, grounded in what is on the page and in their goal. Do \
not describe the HTML or mention element names, JSON or the word "action". Reply with the \
sentence only."""

#: The teacher's context budget (tokens) for the session-so-far part of the prompt.
TEACHER_CONTEXT_BUDGET = 3000
#: Longest rationale kept (characters); the policy's answer schema allows 400.
MAX_RATIONALE_CHARS = 400


class TeacherError(RuntimeError):
    """One rationale the teacher could not produce; ``code`` is short and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------------
# Jobs and prompts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RationaleJob:
    """One step that needs a rationale, with what a teacher needs to write it."""

    session_id: str
    step: int
    action: dict[str, Any]
    messages: list[dict[str, str]]
    target_text: str = ""
    url: str = ""
    title: str = ""
    intent: str = ""

    @property
    def where(self) -> str:
        return f"session {self.session_id} step {self.step}"


def _strip_reminder(text: str) -> str:
    from shop_r1.simulator.prompt import ANSWER_REMINDER

    text = text.rstrip()
    if text.endswith(ANSWER_REMINDER):
        text = text[: -len(ANSWER_REMINDER)].rstrip()
    return text


def teacher_messages(step: TraceStep, history: Sequence[Any], persona: Any, *,
                     token_budget: int = TEACHER_CONTEXT_BUDGET) -> list[dict[str, str]]:
    """The teacher's chat for one step: :data:`RATIONALE_PROMPT` filled with the step's context.

    The context is the policy's own user turn (``shop_r1.simulator.prompt.build_messages``: earlier
    pages and actions, then the current page) without the answer-format reminder, so the teacher
    reads exactly what the model being trained will read.
    """
    from shop_r1.simulator.prompt import build_messages

    messages = build_messages(observation_from_step(step), history, None, token_budget=token_budget)
    context = _strip_reminder("\n".join(m["content"] for m in messages if m["role"] == "user"))
    action = step.action or {}
    name = action.get("name")
    el = step.element(name) if name else None
    if el is not None and el.text.strip():
        target = f'("{name}" is the {el.kind} labelled "{_short(el.text, 120)}".)\n'
    elif name:
        target = f'("{name}" is an element of the current page.)\n'
    else:
        target = ""
    persona_text = persona.to_prompt_block() if persona is not None and hasattr(persona, "to_prompt_block") \
        else "an ordinary online shopper."
    goal = (getattr(persona, "intent", None) or "").strip() or "not stated; infer it from what they did."
    content = RATIONALE_PROMPT.format(persona=persona_text, goal=goal, context=context,
                                      action=json.dumps(action, ensure_ascii=False), target=target)
    return [{"role": "user", "content": content}]


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


_FENCE = re.compile(r"^```[\w-]*\s*|\s*```$")
_LABEL = re.compile(r"^(?:rationale|thought|answer|sentence)\s*:\s*", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def clean_rationale(text: str | None) -> str:
    """A teacher's reply as one clean rationale; raises :class:`TeacherError` ``empty`` if none.

    Accepts what teachers actually send: code fences, a ``Rationale:`` label, surrounding
    quotes, a JSON object with a ``rationale`` key, several lines or sentences (the first two
    sentences of the first non-empty line are kept, at most :data:`MAX_RATIONALE_CHARS`).
    """
    text = (text or "").strip()
    text = _FENCE.sub("", text).strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("rationale"), str):
            text = obj["rationale"].strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line).strip().strip('"“”\'').strip()
    sentences = _SENTENCE_END.split(line)
    out = " ".join(sentences[:2]).strip()
    if len(out) > MAX_RATIONALE_CHARS:
        cut = out[:MAX_RATIONALE_CHARS]
        out = cut[: cut.rfind(" ")].rstrip(",;:") + "." if " " in cut else cut
    if not out:
        raise TeacherError("empty", f"the teacher's reply holds no sentence: {(text or '')[:80]!r}")
    return out


# --------------------------------------------------------------------------------------------
# Cache and rate limit
# --------------------------------------------------------------------------------------------


def cache_key(messages: Sequence[Mapping[str, str]], model: str) -> str:
    """sha256 of (prompt, model): the same question to the same teacher is asked once."""
    payload = json.dumps({"model": model, "messages": list(messages)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class RationaleCache:
    """One JSON file per answer under ``root/ab/abcdef...json``, written atomically.

    Files rather than one database: concurrent runs (or a run killed mid-write) can never corrupt
    what is already cached, and a partial file is never visible (temp file + rename).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("unreadable cache entry %s (%s); asking again", path, exc)
            return None
        value = data.get("rationale") if isinstance(data, dict) else None
        return value if isinstance(value, str) and value.strip() else None

    def put(self, key: str, rationale: str, model: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"rationale": rationale, "model": model, "created": time.time()}, fh, ensure_ascii=False)
        os.replace(tmp, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json"))


def default_cache_dir() -> Path:
    from shop_r1.envs.cache import cache_dir

    return cache_dir("rationales")


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``burst``.

    Starts full; each ``acquire`` takes one token, waiting for the refill when none is left.
    The waits are serialised by a lock, so waiters are served in arrival order.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate!r}")
        if not burst >= 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = self.burst
        self._last = time.monotonic()
        self._lock: asyncio.Lock | None = None

    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


# --------------------------------------------------------------------------------------------
# Teachers
# --------------------------------------------------------------------------------------------


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
                 backoff_s: float = 0.5, temperature: float = 0.3, max_tokens: int = 96) -> None:
        from shop_r1.simulator.policies.http_policy import ChatClient, SamplingParams
        from shop_r1.simulator.policies.openai_policy import OPENAI_DEFAULT_BASE_URL

        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key and base_url.rstrip("/") == OPENAI_DEFAULT_BASE_URL:
            raise ValueError(f"no API key for {base_url}: set OPENAI_API_KEY (or --base-url for a "
                             "compatible endpoint that needs none)")
        self.client = ChatClient(base_url, model, api_key=api_key, max_concurrency=concurrency,
                                 max_retries=max_retries, timeout_s=timeout_s, backoff_s=backoff_s)
        self.sampling = SamplingParams(temperature=temperature, max_tokens=max_tokens)

    @property
    def model_id(self) -> str:
        return f"openai:{self.client.model}"

    async def write(self, job: RationaleJob) -> str:
        from shop_r1.simulator.policies.http_policy import ChatRequestError

        body = self.client.build_body(job.messages, self.sampling)
        try:
            result = await self.client.complete(body)
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
        self.max_new_tokens = max_new_tokens
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = asyncio.Lock()

    @property
    def model_id(self) -> str:
        return f"transformers:{self.model_dir.resolve()}"

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self._model = AutoModelForCausalLM.from_pretrained(self.model_dir).to(device).eval()

    def _generate(self, messages: list[dict[str, str]]) -> str:
        import torch

        self._load()
        tok, model = self._tokenizer, self._model
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = {k: v.to(model.device) for k, v in ids.items()}
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    async def write(self, job: RationaleJob) -> str:
        async with self._lock:  # one generation at a time: the model is not shared across threads
            try:
                return await asyncio.to_thread(self._generate, job.messages)
            except Exception as exc:  # a model failure is this step's failure, not the run's
                raise TeacherError("generation_error", f"{type(exc).__name__}: {exc}") from exc


_SEARCHY = re.compile(r"search|query|keyword|find", re.I)
_ADD = re.compile(r"add.?to.?(cart|bag|basket)|buy.?now", re.I)
_CHECKOUT = re.compile(r"check.?out|place.?order|proceed|pay", re.I)
_CART = re.compile(r"\bcart\b|basket|bag", re.I)
_SORT = re.compile(r"sort|order.?by", re.I)
_REFINE = re.compile(r"filter|refine|refinement|categor|brand|price|rating|review|color|colour|size", re.I)
_NEXT = re.compile(r"next|page|more|load", re.I)
_BACK = re.compile(r"back|home|logo|continue.?shopping", re.I)
_PRODUCT = re.compile(r"product|item|view|title|result|detail", re.I)


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
        return "template:v1"

    def _pick(self, job: RationaleJob, options: Sequence[str]) -> str:
        h = hashlib.blake2b(f"{self.seed}:{job.session_id}:{job.step}".encode(), digest_size=4).digest()
        return options[int.from_bytes(h, "big") % len(options)]

    async def write(self, job: RationaleJob) -> str:
        return self.sentence(job)

    def sentence(self, job: RationaleJob) -> str:
        a = job.action
        kind = a.get("type")
        name = str(a.get("name") or "")
        label = _short(job.target_text or name.replace("_", " ").replace(".", " "), 60)
        cue = f"{name} {job.target_text}"
        goal = _short(job.intent, 60) if job.intent else ""
        if kind == "type_and_submit":
            text = _short(str(a.get("text") or ""), 60)
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
        if kind == "terminate":
            title = (job.title or "").lower()
            if any(w in title for w in ("confirm", "thank", "order placed", "receipt")):
                return self._pick(job, ["I've got what I came for, so I'm done.",
                                        "My order is through; I'll close the browser."])
            return self._pick(job, [
                "Nothing here is quite what I want, so I'll stop for now.",
                "I've seen enough for today; I'll leave without buying.",
                f"This isn't getting me closer to {goal or 'what I need'}, so I'll call it a day.",
            ])
        if _ADD.search(cue):
            product = _short(job.title, 50) or "this item"
            return self._pick(job, [
                f"{product} fits what I need, so I'll add it to my cart.",
                "This looks right for me and the price is fine, so into the cart it goes.",
            ])
        if _CHECKOUT.search(cue):
            return self._pick(job, ["I have what I want in my cart, so I'll go to checkout.",
                                    "Time to finish up; I'll check out."])
        if _CART.search(cue):
            return self._pick(job, ["Let me check my cart before deciding.",
                                    "I want to see what's in my cart."])
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
        from shop_r1.simulator.models import resolve_model

        return TransformersTeacher(resolve_model(model))
    raise ValueError(f"unknown teacher {kind!r}; choose openai, transformers or template")


# --------------------------------------------------------------------------------------------
# The synthesis run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    session_id: str
    step: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"session {self.session_id} step {self.step}: {self.code}: {self.message}"


@dataclass
class SynthesisReport:
    """What one run did. ``calls``: teacher invocations (cache hits are not calls)."""

    source: str
    out_dir: str | None
    teacher: dict[str, Any]
    steps: int = 0
    without_action: int = 0
    kept: int = 0
    needed: int = 0
    cached: int = 0
    calls: int = 0
    written: int = 0
    failures: list[Failure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "out_dir": self.out_dir, "teacher": self.teacher, "steps": self.steps,
                "without_action": self.without_action, "kept": self.kept, "needed": self.needed,
                "cached": self.cached, "calls": self.calls, "written": self.written,
                "failed": len(self.failures), "failures": [str(f) for f in self.failures],
                "bad_rows": len(self.problems), "problems": self.problems, "wall_s": round(self.wall_s, 3)}


def plan_jobs(trace: LoadedTrace, *, overwrite: bool = False,
              token_budget: int = TEACHER_CONTEXT_BUDGET) -> tuple[list[RationaleJob], dict[str, int]]:
    """The steps that need a rationale, in file order, and counts of the ones that do not."""
    jobs: list[RationaleJob] = []
    counts = {"steps": 0, "without_action": 0, "kept": 0}
    for sid, steps in trace.result.sessions.items():
        persona = trace.personas.get(steps[0].persona_id) if steps and steps[0].persona_id else None
        history: list[Any] = []
        for step in steps:
            counts["steps"] += 1
            if step.action is None:
                counts["without_action"] += 1
                continue
            if step.rationale.strip() and not overwrite:
                counts["kept"] += 1
            else:
                name = step.action.get("name")
                el = step.element(name) if name else None
                jobs.append(RationaleJob(
                    session_id=sid, step=step.step, action=dict(step.action),
                    messages=teacher_messages(step, history, persona, token_budget=token_budget),
                    target_text=el.text if el is not None else "", url=step.url, title=step.title,
                    intent=(getattr(persona, "intent", None) or ""),
                ))
            history.append(history_item(step))
    return jobs, counts


ProgressFn = Callable[[int, int], None]


async def synthesize(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None,
    teacher: Teacher,
    *,
    overwrite: bool = False,
    rate: float | None = None,
    burst: float = 1.0,
    concurrency: int = 4,
    cache: RationaleCache | str | os.PathLike[str] | None = None,
    token_budget: int = TEACHER_CONTEXT_BUDGET,
    progress: ProgressFn | None = None,
) -> SynthesisReport:
    """Fill in rationales for ``source``'s steps and write the trace to ``out_dir``.

    ``out_dir`` None only computes (and caches); otherwise the new run directory (``trace.jsonl``
    + ``run.json``) is written at the end, atomically. Failed steps keep an empty rationale and
    are listed in the report; rerunning asks only for those (everything else is cached).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and (out / "trace.jsonl").exists():
        raise FileExistsError(f"{out / 'trace.jsonl'} exists already; choose a new --out folder")
    t0 = time.perf_counter()
    trace = load_trace(source)
    if len(trace.result.run_ids) > 1:
        raise ValueError(f"{trace.result.path} mixes runs {', '.join(trace.result.run_ids)}; split it per run first")
    jobs, counts = plan_jobs(trace, overwrite=overwrite, token_budget=token_budget)
    report = SynthesisReport(source=str(trace.result.path), out_dir=str(out) if out else None,
                             teacher=teacher.describe(), steps=counts["steps"],
                             without_action=counts["without_action"], kept=counts["kept"], needed=len(jobs),
                             problems=[str(p) for p in trace.problems])
    store = None
    if teacher.cached:
        store = cache if isinstance(cache, RationaleCache) else RationaleCache(cache or default_cache_dir())
    bucket = TokenBucket(rate, burst) if rate else None
    sem = asyncio.Semaphore(concurrency)
    results: dict[tuple[str, int], str] = {}
    done = 0

    async def run_one(job: RationaleJob) -> None:
        nonlocal done
        key = cache_key(job.messages, teacher.model_id) if store is not None else ""
        hit = store.get(key) if store is not None else None
        if hit is not None:
            report.cached += 1
            results[(job.session_id, job.step)] = hit
        else:
            async with sem:
                if bucket is not None:
                    await bucket.acquire()
                report.calls += 1
                try:
                    text = clean_rationale(await teacher.write(job))
                except TeacherError as exc:
                    report.failures.append(Failure(job.session_id, job.step, exc.code, str(exc)))
                    log.warning("%s: %s: %s", job.where, exc.code, exc)
                else:
                    results[(job.session_id, job.step)] = text
                    if store is not None:
                        store.put(key, text, teacher.model_id)
        done += 1
        if progress is not None:
            progress(done, len(jobs))

    try:
        await asyncio.gather(*(run_one(j) for j in jobs))
    finally:
        await teacher.close()
    report.failures.sort(key=lambda f: (f.session_id, f.step))
    if out is not None:
        report.written = _write_trace(trace, out, results, teacher)
    report.wall_s = time.perf_counter() - t0
    log.info("rationales: %d needed, %d cached, %d calls, %d failed", report.needed, report.cached,
             report.calls, len(report.failures))
    return report


def _write_trace(trace: LoadedTrace, out: Path, results: Mapping[tuple[str, int], str], teacher: Teacher) -> int:
    """Write the trace with the new rationales into ``out`` via a temp folder + rename."""
    from shop_r1.simulator.trace import TraceWriter

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the output is an ordinary run folder
    info: RunInfo | None = trace.run_info
    run_id = trace.result.run_ids[0] if trace.result.run_ids else (info.run_id if info else None)
    source_note = {"source": str(trace.result.path), "teacher": teacher.describe()}
    written = 0
    try:
        writer = TraceWriter(
            tmp, run_id=run_id,
            config={**(info.config if info else {}), "rationales": source_note},
            seed=info.seed if info else None,
            personas=info.personas if info else (),
            versions=info.versions if info else None,
        )
        with writer:
            for step in trace.result.steps:
                data = step.to_json()
                new = results.get((step.session_id, step.step))
                if new is not None:
                    data["rationale"] = new
                    data["rationale_source"] = teacher.model_id
                    written += 1
                writer.write_step(data)
            for event in trace.result.events:
                writer.write_event(event.to_json())
            writer.finish(dict(info.summary) if info else None)
        if out.exists():
            if any(out.iterdir()):
                raise FileExistsError(f"{out} is not empty; choose a new --out folder")
            out.rmdir()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return written


__all__ = [
    "Failure", "MAX_RATIONALE_CHARS", "OpenAITeacher", "RATIONALE_PROMPT", "RationaleCache", "RationaleJob",
    "SynthesisReport", "TEACHER_CONTEXT_BUDGET", "Teacher", "TeacherError", "TemplateTeacher", "TokenBucket",
    "TransformersTeacher", "cache_key", "clean_rationale", "default_cache_dir", "make_teacher", "plan_jobs",
    "synthesize", "teacher_messages",
]
