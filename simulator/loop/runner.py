"""The session runner: N simulated shoppers, C at a time, one browser, one trace.

Design points that users rely on:
- one Chromium process, one isolated context per shopper (cheap: ~30 MB per context);
- policy calls are batched across shoppers (``PolicyBatcher``) so a local model decodes for
  several shoppers at once and an HTTP backend overlaps requests;
- every step is appended to ``trace.jsonl`` and flushed as it happens, so Ctrl-C or a crash
  loses nothing already recorded;
- a shopper's failure (policy errors after retries, browser crash, timeout) ends that session
  with a recorded reason; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shop_r1.envs.actions import Action, Click, Terminate
from shop_r1.envs.browser import SESSION_HEADER, BrowserPool, SessionOptions
from shop_r1.envs.outages import ResetError
from shop_r1.envs.controls import control_label
from shop_r1.envs.funnel import action_events
from shop_r1.envs.observation import Observation, StepResult
from shop_r1.envs.pagetype import bot_wall
from shop_r1.envs.purchase import order_confirmation
from shop_r1.envs.reducer import ReducerOptions
from shop_r1.simulator.loop.admission import Admission
from shop_r1.simulator.loop.batching import PolicyBatcher
from shop_r1.simulator.loop.loops import LoopWatch, unchanged
from shop_r1.personas.model import Persona
from shop_r1.simulator.agent.policies.base import Policy, failure
from shop_r1.simulator.records.exchange import HistoryItem, PolicyRequest, PolicyResponse
from shop_r1.simulator.records.safety import Redactor, allowed_origins
from shop_r1.simulator.records.trace import Outcome, TraceStep, TraceWriter, history_item, session_end_event, step_record
from shop_r1.simulator.records.trace.builder import NO_ACTION

log = logging.getLogger(__name__)


def bot_wall_of(obs: Observation | None) -> str | None:
    """Why ``obs`` is a bot wall (a CAPTCHA, a challenge, "access denied"), else None: the
    session then ends as ``bot_wall``, the shop's doing and not the shopper's (issue 24)."""
    if obs is None or obs.fault is not None:
        return None
    return bot_wall(obs)


#: Outcomes of a step that ended the episode by itself (``StepResult.done``), by error code.
_DONE_OUTCOMES: dict[str, Outcome] = {"page_crashed": "browser_error", "page_unresponsive": "shop_error"}


class RunConfig(BaseModel):
    """Everything that shapes a run; recorded verbatim in run.json."""

    model_config = ConfigDict(extra="forbid")

    shop_url: str
    shoppers: int = Field(4, ge=1, le=10_000)
    concurrency: int = Field(4, ge=1, le=512, description="Shoppers browsing at once.")
    max_steps: int = Field(15, ge=1, le=500, description="Step budget per session.")
    seed: int = Field(0, description="Seed for personas, intents and policy sampling.")
    out_dir: Path
    policy: str = "scripted"
    model: str | None = None
    allow_purchase: bool = Field(False, description="Let shoppers click controls that place an order or pay.")
    extra_origins: list[str] = Field(default_factory=list)
    step_timeout_s: float = Field(120.0, gt=0, description="Seconds a policy call may take.")
    session_timeout_s: float = Field(900.0, gt=0, description="Seconds a whole session may take.")
    max_policy_errors: int = Field(3, ge=1)
    max_batch: int = Field(8, ge=1)
    headless: bool = True
    browser_path: str | None = Field(
        None, description="Chromium executable (else $SHOP_R1_CHROMIUM, Playwright's, /usr/bin/chromium).")
    screenshots: bool = Field(False, description="Keep a screenshot per observation (larger traces).")
    page_token_budget: int = Field(8000, ge=256, description="Tokens one reduced page may take (the reducer drops "
                                   "far-away text first, visible controls last).")
    redact: bool = Field(True, description="Scrub typed secrets (and card/IBAN/e-mail values) from every recorded "
                         "field.")
    first_page_attempts: int = Field(3, ge=1, le=10, description="tries to load the start page before a session is given up")

    @field_validator("shop_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"shop URL must start with http:// or https://, got {v!r}")
        return v


@dataclass
class SessionEnd:
    session_id: str
    persona_id: str | None
    steps: int
    outcome: Outcome
    reason: str


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    sessions: list[SessionEnd] = field(default_factory=list)
    steps: int = 0
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(s.outcome for s in self.sessions)


class RunObserver:
    """Hooks for a live view; the runner itself prints nothing."""

    def on_start(self, total: int) -> None: ...
    def on_step(self, session_id: str, step: int, action: Action | None, error_code: str | None) -> None:
        """``action`` as recorded (secrets redacted); ``error_code`` the parse or execution error's code."""
    def on_session_end(self, end: SessionEnd) -> None: ...


def new_run_id() -> str:
    """Sortable by start time, unique across hosts: ``20261201-193000-1a2b3c``."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def persona_id(persona: Persona | None) -> str | None:
    return persona.persona_id if persona is not None else None


def persona_json(persona: Persona | None) -> dict[str, Any] | None:
    return persona.model_dump(mode="json") if persona is not None else None


class _Session:
    """One shopper's loop; owns its browser context and writes its own steps."""

    def __init__(self, runner: "Runner", index: int, persona: Persona | None, writer: Any = None):
        self.r = runner
        self.writer = writer if writer is not None else runner.writer
        self.persona = persona
        self.index = index
        self.session_id = f"{runner.run_id}-{index:04d}"
        self.steps = 0
        self.interrupted: SessionEnd | None = None
        self.redactor = Redactor(enabled=runner.config.redact)
        self.added_to_cart = False
        self.purchased = False

    def _record(self, step: int, obs: Observation, resp: PolicyResponse, result: StepResult | None,
                policy_s: float, step_ms: float, outcome: Outcome | None = None, reason: str = "",
                events: list[str] | None = None) -> TraceStep:
        shot = (self.writer.write_screenshot(self.session_id, step, obs.screenshot)
                if obs.screenshot is not None else None)
        record = step_record(
            run_id=self.r.run_id, session_id=self.session_id, step=step, observation=obs, response=resp,
            result=result, persona_id=persona_id(self.persona),
            timings={"policy_s": round(policy_s, 4), "step_ms": round(step_ms, 1)},
            outcome=outcome, end_reason=reason, redactor=self.redactor, screenshot=shot, events=events or [],
        )
        return self.writer.write_step(record)

    def _order_placed(self, before: Observation, result: StepResult) -> str | None:
        """Why the page this step led to says an order was placed (None: it does not).

        Defence in depth behind the purchase guard: whatever the guard decided, a confirmation
        page reached from a page that was not one means an order went through. Without
        ``--allow-purchase`` that ends the session as ``order_placed`` and fails the run; with it,
        the order is recorded on the step and counted as a purchase.
        """
        after = result.observation
        if after is None or after.fault is not None:
            return None
        evidence = order_confirmation(after)
        if evidence is None or order_confirmation(before) is not None:
            return None
        self.purchased = True
        allowed = self.r.config.allow_purchase
        message = (f"the page after this step ({after.url}) reads as an order confirmation ({evidence})"
                   + ("" if allowed else "; purchases were not allowed: the purchase guard missed this order"))
        (log.info if allowed else log.error)("session %s: %s", self.session_id, message)
        return message

    def _outcome_on_terminate(self) -> Outcome:
        if self.purchased:
            return "purchased"
        return "added_to_cart" if self.added_to_cart else "abandoned"

    async def run(self) -> SessionEnd:
        r = self.r
        cfg = r.config
        wanted = r.policy.page_budget(self.session_id)
        page_budget = min(cfg.page_token_budget, wanted) if wanted else cfg.page_token_budget
        session = await r.pool.new_session(
            self.session_id,
            allowed_origins=r.origins,
            extra_headers={SESSION_HEADER: self.session_id},
            options=SessionOptions(allow_purchase=cfg.allow_purchase, screenshot=cfg.screenshots,
                                   screenshot_type="jpeg", screenshot_mask_inputs=cfg.redact,
                                   reducer=ReducerOptions(token_budget=page_budget)),
        )
        history: list[HistoryItem] = []
        outcome: Outcome = "max_steps"
        reason = f"reached the step budget ({cfg.max_steps})"
        policy_errors = 0
        obs: Observation | None = None
        try:
            async with asyncio.timeout(cfg.session_timeout_s):
                obs = await self._first_page(session)
                if r.gate is not None:
                    r.gate.opened(self.index)
                wall = bot_wall_of(obs)
                if wall is not None:  # the shop turned the shopper away before a first step
                    outcome, reason = "bot_wall", wall
                    self._end_event(outcome, reason, obs)
                    return SessionEnd(self.session_id, persona_id(self.persona), self.steps, outcome, reason)
                loops = LoopWatch()
                for step in range(cfg.max_steps):
                    self.steps = step + 1
                    req = PolicyRequest(session_id=self.session_id, observation=obs, history=tuple(history),
                                        persona=self.persona, step=step)
                    t0 = time.perf_counter()
                    try:
                        resp = await asyncio.wait_for(r.batcher.submit(req), cfg.step_timeout_s)
                    except asyncio.TimeoutError:
                        resp = PolicyResponse(action=None, error=failure(
                            "timeout", f"the policy took over {cfg.step_timeout_s:.0f} s", timeout_s=cfg.step_timeout_s))
                    policy_s = time.perf_counter() - t0
                    last = step == cfg.max_steps - 1
                    if resp.action is None:
                        policy_errors += 1
                        fatal = policy_errors >= cfg.max_policy_errors
                        error = resp.error or NO_ACTION
                        end: tuple[Outcome | None, str] = ("policy_error", f"{policy_errors} policy errors in a "
                               f"row; last: {error.code} ({error.message})") if fatal else (
                            ("max_steps", reason) if last else (None, ""))
                        self._record(step, obs, resp, None, policy_s, 0.0, end[0], end[1])
                        r.observer.on_step(self.session_id, step, None, error.code)
                        r.result.steps += 1
                        if end[0] is not None:
                            outcome, reason = end[0], end[1]
                            break
                        continue
                    policy_errors = 0
                    action = resp.action
                    t1 = time.perf_counter()
                    result = await session.step(action)
                    step_ms = (time.perf_counter() - t1) * 1000
                    order = self._order_placed(obs, result)
                    el = obs.element(action.name) if isinstance(action, Click) else None
                    label = control_label(action.name, el.text if el else "") if isinstance(action, Click) else ""
                    achieved = action_events(action, label, executed=result.error is None)
                    self.added_to_cart |= "added_to_cart" in achieved
                    self.purchased |= "purchased" in achieved
                    end = (None, "")
                    if order is not None and not cfg.allow_purchase:
                        end = ("order_placed", order)
                    elif isinstance(action, Terminate):
                        end = (self._outcome_on_terminate(), resp.rationale or "the shopper chose to stop")
                    elif result.done:
                        code = result.error.code if result.error else "done"
                        end = (_DONE_OUTCOMES.get(code) or self._outcome_on_terminate(),
                               result.error.message if result.error else "session done")
                    elif result.observation is not None and result.observation.fault is not None:
                        # The shop failed, not the shopper: the error page is never recorded as a page seen.
                        fault = result.observation.fault
                        end = ("shop_unreachable" if fault == "unreachable" else "shop_error",
                               result.observation.fault_message())
                    elif (wall := bot_wall_of(result.observation)) is not None:
                        end = ("bot_wall", wall)
                    elif loops.note(action, result.error is not None or unchanged(obs, result.observation)):
                        end = ("stuck", loops.reason())
                    elif last:
                        end = ("max_steps", reason)
                    record = self._record(step, obs, resp, result, policy_s, step_ms, end[0], end[1],
                                          events=["order_placed"] if order is not None else [])
                    r.observer.on_step(self.session_id, step, record.action,
                                       result.error.code if result.error else None)
                    r.result.steps += 1
                    history.append(history_item(record))  # what replay rebuilds from the trace
                    if end[0] is not None:
                        outcome, reason = end
                        break
                    if result.observation is not None:
                        obs = result.observation
        except ResetError as exc:  # the start page never opened: the shop's doing, not the shopper's
            log.warning("session %s: %s", self.session_id, exc)
            outcome = "shop_unreachable" if exc.fault == "unreachable" else "shop_error"
            reason = str(exc)
            self._end_event(outcome, reason, obs)
        except TimeoutError:  # the session's own time budget (asyncio.timeout), not a policy call's
            outcome, reason = "timeout", f"session exceeded {cfg.session_timeout_s:.0f} s"
            self._end_event(outcome, reason, obs)
        except asyncio.CancelledError:
            outcome, reason = "interrupted", "the run was stopped"
            self._end_event(outcome, reason, obs)
            self.interrupted = SessionEnd(self.session_id, persona_id(self.persona), self.steps, outcome, reason)
            raise
        except Exception as exc:  # browser or internal failure: this session only
            log.warning("session %s failed: %s", self.session_id, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            outcome, reason = "browser_error", f"{type(exc).__name__}: {exc}"
            self._end_event(outcome, reason, obs)
        finally:
            try:
                await asyncio.shield(session.close())
            except Exception:  # a dead context cannot be closed; nothing to keep
                pass
        return SessionEnd(self.session_id, persona_id(self.persona), self.steps, outcome, reason)

    async def _first_page(self, session: Any) -> Observation:
        """The start page, retried: on a loaded host a first navigation can time out once, and
        giving the session up then would turn overload into lost shoppers."""
        cfg, admission = self.r.config, self.r.admission
        for attempt in range(1, cfg.first_page_attempts + 1):
            t0 = time.perf_counter()
            try:
                obs = await session.reset(cfg.shop_url)
            except ResetError as exc:
                if admission is not None:
                    await admission.first_page(time.perf_counter() - t0, ok=False)
                if attempt == cfg.first_page_attempts:
                    raise
                log.info("session %s: first page failed (attempt %d of %d): %s", self.session_id, attempt,
                         cfg.first_page_attempts, exc)
                await asyncio.sleep(min(8.0, 2.0 ** attempt))
                continue
            if admission is not None:
                await admission.first_page(time.perf_counter() - t0, ok=True)
            return obs
        raise AssertionError("unreachable")

    def _end_event(self, outcome: Outcome, reason: str, obs: Observation | None) -> None:
        """An end marker for sessions that stop between steps (crash, Ctrl-C)."""
        self.writer.write_event(session_end_event(
            run_id=self.r.run_id, session_id=self.session_id, step=self.steps, outcome=outcome,
            end_reason=reason, persona_id=persona_id(self.persona), url=obs.url if obs else None,
            redactor=self.redactor))


class SessionGate(Protocol):
    """When session ``index`` may start; told when it has opened its first page."""

    async def before(self, index: int) -> None: ...

    def opened(self, index: int) -> None: ...


class Runner:
    def __init__(self, config: RunConfig, policy: Policy, personas: Sequence[Persona | None],
                 observer: RunObserver | None = None, run_id: str | None = None, *, hosting_only: bool = False,
                 gate: SessionGate | None = None):
        """``hosting_only``: a cluster host's runner, which runs the sessions it is handed
        (:meth:`run_session`) instead of a persona list of its own. ``gate``: when each session
        may start (an A/B test orders the two sessions of a pair)."""
        if len(personas) < config.shoppers and not hosting_only:
            raise ValueError(f"{config.shoppers} shoppers need as many personas, got {len(personas)}")
        self.config = config
        self.policy = policy
        self.personas = list(personas)[: config.shoppers]
        self.observer = observer or RunObserver()
        self.run_id = run_id or new_run_id()
        self.origins = allowed_origins(config.shop_url, config.extra_origins)
        self.result = RunResult(self.run_id, Path(config.out_dir))
        self.writer: Any = None
        self.admission: Admission | None = None
        self.gate = gate

    @contextlib.asynccontextmanager
    async def hosting(self) -> AsyncIterator[Runner]:
        """The browser and the policy batcher that sessions run in (a local run or a cluster host)."""
        cfg = self.config
        async with BrowserPool(browser_path=cfg.browser_path, headless=cfg.headless) as pool, \
                PolicyBatcher(self.policy, max_batch=cfg.max_batch) as batcher:
            self.pool, self.batcher = pool, batcher
            yield self

    async def run_session(self, index: int, persona: Persona | None, writer: Any = None) -> SessionEnd:
        """One shopper from first page to its one end marker, written through ``writer``
        (default: this run's trace writer). Inside :meth:`hosting`."""
        session = _Session(self, index, persona, writer)
        try:
            return await session.run()
        except asyncio.CancelledError:
            if session.interrupted is not None:  # counted in run.json's summary too
                self.result.sessions.append(session.interrupted)
                self.observer.on_session_end(session.interrupted)
            raise

    async def run(self) -> RunResult:
        cfg = self.config
        t0 = time.perf_counter()
        run_config = {**cfg.model_dump(mode="json"), "policy_info": self.policy.describe()}
        personas_json = [j for p in self.personas if (j := persona_json(p)) is not None]
        with TraceWriter(cfg.out_dir, run_id=self.run_id, config=run_config, seed=cfg.seed,
                         personas=personas_json) as writer:
            self.writer = writer
            async with self.hosting():
                self.observer.on_start(cfg.shoppers)
                self.admission = admission = Admission(cfg.concurrency)

                async def one(i: int, persona: Persona | None) -> None:
                    if self.gate is not None:  # before admission: a waiting session holds no slot
                        await self.gate.before(i)
                    await admission.acquire()
                    try:
                        end = await self.run_session(i, persona)
                    finally:
                        await admission.release()
                        if self.gate is not None:  # a session that never opened its page frees its pair too
                            self.gate.opened(i)
                    self.result.sessions.append(end)
                    self.observer.on_session_end(end)

                tasks = [asyncio.create_task(one(i, p)) for i, p in enumerate(self.personas)]
                try:
                    await asyncio.gather(*tasks)
                except asyncio.CancelledError:
                    self.result.interrupted = True
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                finally:
                    self.result.wall_s = time.perf_counter() - t0
                    writer.finish(self.summary())
        await self.policy.close()
        return self.result

    def summary(self) -> dict[str, Any]:
        res = self.result
        return {
            "sessions": len(res.sessions),
            "steps": res.steps,
            "outcomes": dict(res.outcomes),
            "wall_s": round(res.wall_s, 2),
            "steps_per_s": round(res.steps / res.wall_s, 3) if res.wall_s else 0.0,
            "interrupted": res.interrupted,
            "batch_sizes": Counter(self.batcher.batch_sizes) if hasattr(self, "batcher") else {},
            "admission": self.admission.report.to_json() if self.admission is not None else None,
        }


async def run_simulation(config: RunConfig, policy: Policy, personas: Sequence[Persona | None],
                         observer: RunObserver | None = None) -> RunResult:
    return await Runner(config, policy, personas, observer).run()
