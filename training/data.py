"""From traces to training and evaluation datasets (HF ``datasets``, saved as Parquet).

Two views of the same recorded sessions in ONE context format, the one the simulator's policies
read live: :func:`shop_r1.simulator.agent.prompt.build_messages` -- the system prompt, then one user turn
with every earlier page, rationale and action inline before the current page (the paper's RL
example). SFT rows, RL rows, evaluation and the simulator therefore show a step's context byte
for byte the same (``tests/test_training_data.py`` checks it); an SFT model is not trained on
multi-turn chats it never reads when it shops.

* **SFT** (:func:`build_sft_dataset`): one row per target step -- that step's RL prompt, then the
  assistant turn ``format_answer(rationale, action)``. "SFT trains on whole sessions" (the paper):
  every target step of a session is a row, each with the session so far as its context.
  Columns: ``messages``, ``session_id``, ``persona_id``, ``step``.
* **RL / evaluation** (:func:`build_rl_dataset`): one row per step with an executable recorded
  action: ``prompt`` (``build_messages``: system + one user turn holding every previous page and
  action before the current page, the paper's setting), ``label`` (the action's JSON),
  ``label_type``, ``rationale`` (recorded; may be empty), ``names`` (the page's element names),
  ``session_id``, ``persona_id``, ``step``. Extra columns carry the page itself (``url``,
  ``title``, ``simplified_html``, ``elements`` with kinds and texts) and the shopper
  (``persona``, JSON text), so that evaluation can hand any policy -- also ones that read the
  observation rather than the prompt, like the scripted shopper -- the same page the recording
  saw.

Which steps become examples (the same rule for both views, one loop: :func:`step_contexts`):

* a step whose page was an outage (the shop answered 5xx, a network error, the browser's own
  ``chrome-error://`` page; :attr:`TraceStep.error_page`): never a target and not in the history --
  what a shopper did there says nothing about shoppers. Counted as ``skipped["error_page"]``, and
  the CLI says how many;
* no action (the policy's answer could not be parsed): never a target, and not in the history
  either (the simulator did not add it to the history it showed the policy);
* an action the browser could not execute (``exec_error``): not a target -- a model should not
  learn actions that fail -- but it stays in the history of later steps (SFT and RL alike),
  because the shopper did take it;
* an action whose element is not on the recorded page (when the page lists its elements): not a
  target (an unusable label), kept in the history.

Personas: when the trace's ``run.json`` lists the session's persona, prompts include it (persona
block and goal), as the simulator's policies saw it. ``with_persona=False`` leaves it out (the
paper's plain Shop-R1 setting).

Token budgets: every prompt, SFT's and RL's, is built under the same ``token_budget`` (history
collapsed or dropped oldest first, the page cut last; see ``build_prompt``). An SFT row may also
be capped as a whole (``max_tokens``: prompt + answer, counted with the project's one tokenizer,
:func:`shop_r1.envs.tokens.count_tokens`, plus :data:`TEMPLATE_OVERHEAD` tokens per message); a row
over it is dropped and counted (``skipped["sft_step_over_budget"]``). None (default): no cap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shop_r1.envs.tokens import count_tokens as default_count
from shop_r1.personas.model import Persona
from shop_r1.simulator.records.exchange import HistoryItem
from shop_r1.simulator.agent.prompt import build_messages, format_answer
from shop_r1.simulator.records.trace import TraceStep, history_item, observation_from_step
from shop_r1.simulator.records.trace.run import OpenedRun, open_run
from shop_r1.simulator.records.trace.export import element_table_feature
from shop_r1.training.splits import SPLITS, SplitBy, SplitName, assign_groups, group_key, split

if TYPE_CHECKING:  # pragma: no cover - typing only; datasets is imported lazily
    import datasets

log = logging.getLogger(__name__)

DATASET_SCHEMA = "shop-r1.dataset/1"
MANIFEST_FILE = "manifest.json"
KINDS: tuple[str, ...] = ("sft", "rl")
DatasetKind = Literal["sft", "rl"]

#: Default context budget of one RL prompt (tokens), the simulator's own default.
RL_TOKEN_BUDGET = 6000
#: Default cap on one SFT row (prompt + answer, tokens); None: the prompt budget alone decides.
SFT_MAX_TOKENS: int | None = None
#: Tokens a chat template adds per message (role markers, separators); ChatML adds ~5.
TEMPLATE_OVERHEAD = 8

MissingRationale = Literal["error", "skip"]

#: Skip reasons of steps that stay out of the RL history too (the shopper never saw that page,
#: or the policy's answer never became an action).
NOT_IN_HISTORY: frozenset[str] = frozenset({"no_action", "error_page"})

TokenCounter = Callable[[str], int]


class DatasetBuildError(ValueError):
    """Traces that cannot become a dataset; the message names the trace and session/step."""


# --------------------------------------------------------------------------------------------
# Loading traces
# --------------------------------------------------------------------------------------------


#: A trace as training reads it: records, run info and typed personas (``open_run``).
LoadedTrace = OpenedRun


def load_trace(source: str | os.PathLike[str]) -> LoadedTrace:
    """Read a trace (run directory or ``.jsonl``) leniently: bad lines become problems.

    Unlike ``read_trace``'s default, a bad line in the middle does not abort: it is recorded with
    ``file:line`` (``LoadedTrace.problems``), logged, and skipped, so one corrupt record does not
    cost a whole dataset; an unreadable run.json only costs the prompts their personas. An
    unknown schema major version still raises.
    """
    loaded = open_run(source, strict=False, bad_run_info="warn")
    for problem in loaded.problems:
        log.warning("skipped: %s", problem)
    return loaded


TraceInput = LoadedTrace | str | os.PathLike[str]


def load_traces(traces: TraceInput | Iterable[TraceInput]) -> list[LoadedTrace]:
    """Load one or many traces (paths or already loaded)."""
    if isinstance(traces, (LoadedTrace, str, os.PathLike)):
        traces = [traces]
    return [t if isinstance(t, LoadedTrace) else load_trace(t) for t in traces]


# --------------------------------------------------------------------------------------------
# Step classification
# --------------------------------------------------------------------------------------------


def target_skip_reason(step: TraceStep) -> str | None:
    """Why a step is not a training target (None: it is one). See the module doc."""
    if step.error_page:
        return "error_page"
    if step.action is None:
        return "no_action"
    if step.exec_error is not None:
        return "exec_error"
    name = step.target_name
    if name is not None and step.elements and step.element(name) is None:
        return "label_not_on_page"
    return None


def _persona_json(persona: Persona | None) -> str:
    if persona is None:
        return ""
    return json.dumps(persona.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------------------------
# Features (explicit, so empty splits keep their schema)
# --------------------------------------------------------------------------------------------


def sft_features():
    from datasets import Features, List, Value  # optional heavy dependency: only when building

    s = Value("string")
    return Features({
        "messages": List({"role": s, "content": Value("large_string")}),
        "session_id": s, "persona_id": s, "step": Value("int64"),
    })


def rl_features():
    from datasets import Features, List, Value  # optional heavy dependency: only when building

    s = Value("string")
    return Features({
        "prompt": List({"role": s, "content": Value("large_string")}),
        "label": s, "label_type": s, "rationale": s, "names": List(s),
        "session_id": s, "persona_id": s, "step": Value("int64"),
        "url": s, "title": s, "simplified_html": Value("large_string"),
        "elements": element_table_feature(),
        "persona": s,
    })


def _to_dataset(rows: Sequence[Mapping[str, Any]], features) -> datasets.Dataset:
    import datasets  # optional heavy dependency: only when building

    if not rows:
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.Dataset.from_list([dict(r) for r in rows], features=features)


# --------------------------------------------------------------------------------------------
# Row builders
# --------------------------------------------------------------------------------------------


@dataclass
class BuildStats:
    """What a build kept and skipped, by reason (goes into the manifest)."""

    sessions: int = 0
    steps: int = 0
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "steps": self.steps, "rows": self.rows,
                "skipped": dict(sorted(self.skipped.items()))}


def _sessions(loaded: list[LoadedTrace]) -> Iterable[tuple[LoadedTrace, str, list[TraceStep]]]:
    # By session id, not in the order sessions were recorded: concurrent shoppers finish in a
    # different order each run, and the rows' order is the order SFT's seeded shuffle starts
    # from. Recorded order made two runs of the same 534 steps train to 86 % and 57 % type
    # accuracy (docs/reproduction.md, 2026-12-03).
    for trace in loaded:
        for sid in sorted(trace.result.sessions):
            yield trace, sid, trace.result.sessions[sid]


def _persona_for(trace: LoadedTrace, steps: Sequence[TraceStep], with_persona: bool) -> Persona | None:
    if not with_persona or not steps or steps[0].persona_id is None:
        return None
    return trace.personas.get(steps[0].persona_id)


@dataclass(frozen=True)
class StepContext:
    """One recorded step with the context a policy reads before it: the one place SFT and RL rows
    get their history, so both keep exactly the steps the simulator kept (failed actions too)."""

    trace: LoadedTrace
    session_id: str
    persona: Persona | None
    step: TraceStep
    skip_reason: str | None
    history: tuple[HistoryItem, ...]


def step_contexts(loaded: Sequence[LoadedTrace], *, with_persona: bool, stats: BuildStats) -> Iterator[StepContext]:
    """Every step of every session with its history and why it is not a target (None: it is).

    A step whose reason is in :data:`NOT_IN_HISTORY` never enters the history; every other
    step does after it has been yielded (module doc).
    """
    for trace, sid, steps in _sessions(list(loaded)):
        stats.sessions += 1
        persona = _persona_for(trace, steps, with_persona)
        history: list[HistoryItem] = []
        for step in steps:
            stats.steps += 1
            reason = target_skip_reason(step)
            yield StepContext(trace, sid, persona, step, reason, tuple(history))
            if reason not in NOT_IN_HISTORY:
                history.append(history_item(step))


def step_prompt(ctx: StepContext, *, token_budget: int, count_tokens: TokenCounter | None) -> list[dict[str, str]]:
    """The one context format: :func:`shop_r1.simulator.agent.prompt.build_messages` (system + one user
    turn, earlier pages and actions inline), as the simulator's policies read it live."""
    return build_messages(observation_from_step(ctx.step), ctx.history, ctx.persona, token_budget=token_budget,
                          count_tokens=count_tokens)


def rl_rows(
    traces: TraceInput | Iterable[TraceInput],
    *,
    token_budget: int = RL_TOKEN_BUDGET,
    with_persona: bool = True,
    count_tokens: TokenCounter | None = None,
    stats: BuildStats | None = None,
) -> list[dict[str, Any]]:
    """RL rows as plain dicts (see :func:`build_rl_dataset`)."""
    stats = stats if stats is not None else BuildStats()
    rows: list[dict[str, Any]] = []
    for ctx in step_contexts(load_traces(traces), with_persona=with_persona, stats=stats):
        if ctx.skip_reason is not None:
            stats.skipped[ctx.skip_reason] += 1
            continue
        step = ctx.step
        assert step.action is not None
        rows.append({
            "prompt": step_prompt(ctx, token_budget=token_budget, count_tokens=count_tokens),
            "label": json.dumps(step.action.to_json(), ensure_ascii=False, sort_keys=True),
            "label_type": step.action.type,
            "rationale": step.rationale,
            "names": [e.name for e in step.elements],
            "session_id": ctx.session_id,
            "persona_id": step.persona_id,
            "step": step.step,
            "url": step.url,
            "title": step.title,
            "simplified_html": step.simplified_html,
            "elements": [e.model_dump(mode="json") for e in step.elements],
            "persona": _persona_json(ctx.persona),
        })
    stats.rows = len(rows)
    return rows


def _chat_tokens(messages: Sequence[Mapping[str, str]], count: TokenCounter) -> int:
    return sum(count(m["content"]) + TEMPLATE_OVERHEAD for m in messages)


def sft_rows(
    traces: TraceInput | Iterable[TraceInput],
    *,
    token_budget: int = RL_TOKEN_BUDGET,
    max_tokens: int | None = SFT_MAX_TOKENS,
    max_page_tokens: int | None = None,
    with_persona: bool = True,
    missing_rationale: MissingRationale = "error",
    count_tokens: TokenCounter | None = None,
    stats: BuildStats | None = None,
) -> list[dict[str, Any]]:
    """SFT rows as plain dicts (see :func:`build_sft_dataset`).

    ``token_budget`` is the prompt budget (give the RL rows' so both read the same context);
    ``max_tokens`` caps a whole row, prompt and answer (None: no cap). ``max_page_tokens`` is no
    longer used -- pages are cut by the prompt budget, as for RL and live -- and is accepted only
    so that older callers keep working.
    """
    if missing_rationale not in ("error", "skip"):
        raise ValueError(f"missing_rationale must be 'error' or 'skip', got {missing_rationale!r}")
    if max_page_tokens is not None:
        log.info("sft_rows: max_page_tokens=%d is ignored; SFT prompts are cut by token_budget=%d like RL prompts",
                 max_page_tokens, token_budget)
    count = count_tokens or default_count
    stats = stats if stats is not None else BuildStats()
    rows: list[dict[str, Any]] = []
    lacking: list[str] = []
    for ctx in step_contexts(load_traces(traces), with_persona=with_persona, stats=stats):
        step, reason = ctx.step, ctx.skip_reason
        if reason is None and not step.rationale.strip():
            reason = "no_rationale"
            if missing_rationale == "error":
                lacking.append(f"{ctx.trace.result.path}: session {ctx.session_id} step {step.step}")
        if reason is not None:
            stats.skipped[reason] += 1
            continue
        if lacking:
            continue  # the build fails below; no need to render the rest
        assert step.action is not None
        messages = step_prompt(ctx, token_budget=token_budget, count_tokens=count_tokens)
        messages.append({"role": "assistant", "content": format_answer(step.rationale, step.action)})
        if max_tokens is not None and _chat_tokens(messages, count) > max_tokens:
            stats.skipped["sft_step_over_budget"] += 1
            log.warning("%s: session %s step %d: prompt + answer exceed the SFT row budget of %d tokens; dropped",
                        ctx.trace.result.path, ctx.session_id, step.step, max_tokens)
            continue
        rows.append({"messages": messages, "session_id": ctx.session_id, "persona_id": step.persona_id,
                     "step": step.step})
    if lacking:
        shown = "\n  ".join(lacking[:10])
        more = f"\n  ... and {len(lacking) - 10} more" if len(lacking) > 10 else ""
        raise DatasetBuildError(
            f"{len(lacking)} step(s) have an action but no rationale, which SFT targets need:\n  {shown}{more}\n"
            "Synthesise them first (`shop-r1 data rationales TRACE --out DIR --teacher ...`) or leave those "
            "steps out (missing_rationale='skip' / --missing-rationale skip)."
        )
    stats.rows = len(rows)
    return rows


def build_rl_dataset(traces: TraceInput | Iterable[TraceInput], **kwargs: Any) -> datasets.Dataset:
    """One row per step with an executable recorded action (module doc); kwargs: :func:`rl_rows`."""
    return _to_dataset(rl_rows(traces, **kwargs), rl_features())


def build_sft_dataset(traces: TraceInput | Iterable[TraceInput], **kwargs: Any) -> datasets.Dataset:
    """One row per target step: its RL prompt plus the answer as the assistant turn; kwargs: :func:`sft_rows`."""
    return _to_dataset(sft_rows(traces, **kwargs), sft_features())


# --------------------------------------------------------------------------------------------
# Building a dataset folder
# --------------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict[str, Any]


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` then rename over ``path``: a full disk leaves the old file (or none), never
    a truncated one, and the error names the file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DatasetBuildError(f"cannot write {path}: {exc.strerror or exc}") from exc


def build_dataset_dir(
    traces: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    by: SplitBy = "session",
    seed: int = 0,
    val: float = 0.1,
    test: float = 0.2,
    token_budget: int = RL_TOKEN_BUDGET,
    sft_max_tokens: int | None = SFT_MAX_TOKENS,
    sft_max_page_tokens: int | None = None,
    with_persona: bool = True,
    missing_rationale: MissingRationale = "error",
    count_tokens: TokenCounter | None = None,
) -> BuildResult:
    """Write ``OUT/{sft,rl}/{train,validation,test}.parquet`` and ``OUT/manifest.json``.

    Both datasets are split with one plan made over every session of the traces (see
    :mod:`shop_r1.training.splits`), so a session's chat and its steps share a split.
    """
    if not traces:
        raise DatasetBuildError("no traces given")
    loaded = load_traces(traces)
    rl_stats, sft_stats = BuildStats(), BuildStats()
    rl = rl_rows(loaded, token_budget=token_budget, with_persona=with_persona, count_tokens=count_tokens,
                 stats=rl_stats)
    sft = sft_rows(loaded, token_budget=token_budget, max_tokens=sft_max_tokens, max_page_tokens=sft_max_page_tokens,
                   with_persona=with_persona, missing_rationale=missing_rationale, count_tokens=count_tokens,
                   stats=sft_stats)
    if not rl and not sft:
        problems = [str(p) for t in loaded for p in t.problems]
        first = f"; {len(problems)} unreadable line(s), first: {problems[0]}" if problems else ""
        raise DatasetBuildError(f"no usable steps in {', '.join(str(t) for t in traces)}{first}; nothing was written")
    all_keys = [group_key({"session_id": sid, "persona_id": steps[0].persona_id if steps else None}, by)
                for _, sid, steps in _sessions(loaded)]
    plan = assign_groups(all_keys, val=val, test=test, seed=seed)
    out = Path(out_dir)
    counts: dict[str, dict[str, int]] = {}
    for kind, rows, features in (("sft", sft, sft_features()), ("rl", rl, rl_features())):
        parts = split(rows, val=val, test=test, by=by, seed=seed, assignment=plan)
        (out / kind).mkdir(parents=True, exist_ok=True)
        counts[kind] = {}
        for name in SPLITS:
            target = out / kind / f"{name}.parquet"
            _atomic_write(target, lambda tmp, rows=parts[name]: _to_dataset(rows, features).to_parquet(str(tmp)))
            counts[kind][name] = len(parts[name])
    problems = [str(p) for t in loaded for p in t.problems]
    manifest = {
        "schema": DATASET_SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "split": {"by": by, "seed": seed, "val": val, "test": test,
                  "groups": dict(Counter(plan.values()))},
        "settings": {"rl_token_budget": token_budget, "sft_max_tokens": sft_max_tokens,
                     "sft_max_page_tokens": sft_max_page_tokens, "with_persona": with_persona,
                     "missing_rationale": missing_rationale, "template_overhead": TEMPLATE_OVERHEAD},
        "counts": counts,
        "sources": [t.describe() for t in loaded],
        "bad_rows": len(problems),
        "problems": problems,
        "rl": rl_stats.to_json(),
        "sft": sft_stats.to_json(),
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    _atomic_write(out / MANIFEST_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    log.info("dataset written to %s: %s", out, counts)
    return BuildResult(out_dir=out, manifest=manifest)


def load_split(path: str | os.PathLike[str], kind: DatasetKind = "rl", split: SplitName = "test") -> datasets.Dataset:
    """Load one split: ``path`` is a dataset folder (``DIR/kind/split.parquet``) or a Parquet file."""
    p = Path(path)
    if p.is_file():
        file = p
    else:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        file = p / kind / f"{split}.parquet"
        if not file.is_file():
            raise FileNotFoundError(
                f"no {kind}/{split} split at {file}; build one with `shop-r1 data build TRACE --out {p}`"
            )
    ds = read_parquet(file)
    required = ("prompt", "label", "label_type", "names", "session_id", "step") if kind == "rl" else ("messages",)
    missing = [c for c in required if c not in ds.column_names]
    if missing:
        raise ValueError(f"{file}: not a {kind} split (missing columns: {', '.join(missing)})")
    return ds


def read_parquet(path: str | os.PathLike[str]) -> datasets.Dataset:
    """A Parquet file as an in-memory ``Dataset`` -- empty files included (``Dataset.from_parquet``
    refuses a file without rows, and an empty validation split is legitimate)."""
    import datasets  # optional heavy dependency: only when loading a split
    import pyarrow.parquet as pq

    # An explicit fingerprint from the file's bytes: cheaper than letting `datasets` pickle the
    # whole Arrow table to hash it, and that pickling fails on some Python/pyarrow pairs
    # (Python 3.12: "Can't pickle <class 'MonthDayNano'>").
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:32]
    return datasets.Dataset(pq.read_table(str(path)), fingerprint=digest)


def load_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST_FILE
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = [
    "BuildResult", "BuildStats", "DATASET_SCHEMA", "DatasetBuildError", "LoadedTrace", "MANIFEST_FILE",
    "RL_TOKEN_BUDGET", "SFT_MAX_TOKENS", "StepContext", "TEMPLATE_OVERHEAD", "build_dataset_dir",
    "build_rl_dataset", "build_sft_dataset", "load_manifest", "load_split", "load_trace", "read_parquet",
    "load_traces", "rl_features", "rl_rows", "sft_features", "sft_rows",
    "step_contexts", "step_prompt", "target_skip_reason",
]
