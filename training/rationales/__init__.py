"""Rationale synthesis: a first-person "why" for every recorded action that lacks one.

Real shopping logs carry almost no rationales, but Shop-R1's SFT targets are
``{"rationale", "action"}``; the paper had a strong LLM write them. Here a *teacher* writes one
short first-person sentence per recorded step, given what the shopper saw (the same context a
policy reads, rendered by :mod:`shop_r1.simulator.agent.prompt`) and the action the shopper took:

* ``openai``: any OpenAI-compatible chat-completions endpoint (OpenAI, a gateway, a local vLLM
  server), through the simulator's one client (:class:`shop_r1.simulator.agent.llm.chat.ChatClient`:
  the ``openai`` SDK's retries with back-off on 429/5xx and ``Retry-After``, timeouts, usage);
* ``transformers``: a local model folder, loaded by :mod:`shop_r1.simulator.agent.llm.loader`;
* ``template``: no model at all -- templated sentences from the action and the page. It is what
  the benchmark's data uses, and the fallback when no teacher model is available.

The modules follow the run: :mod:`.prompt` (the teacher's instructions, one job, cleaning a
reply), :mod:`.cache` (answers on disk), :mod:`.teachers`, :mod:`.plan` (which steps need one),
:mod:`.run` (the synthesis run) and :mod:`.write` (the output trace).

Properties a long synthesis run over thousands of steps needs:

* **cached**: every answer is stored on disk (``diskcache``, SQLite transactions) under a hash of
  (prompt, model), so a rerun -- also with a different output folder -- costs nothing;
* **resumable**: because each answer is cached the moment it arrives, a killed run (Ctrl-C, a
  crash, a lost connection) continues where it stopped when started again; the output trace is
  written only at the end, atomically, so there is never a half-written output;
* **rate-limited**: ``rate`` requests per second, bursts up to ``burst`` (``aiolimiter``), in
  front of at most ``concurrency`` calls in flight;
* **honest about failures**: a step whose call failed for good keeps an empty rationale and is
  reported as ``session/step: code: message``; the run goes on.

Steps that already carry a rationale keep it unless ``overwrite=True``. Steps without an action
(the policy's answer could not be parsed) get none: there is nothing to explain.
"""

from shop_r1.training.rationales.cache import RationaleCache, cache_key, default_cache_dir
from shop_r1.training.rationales.plan import plan_jobs
from shop_r1.training.rationales.prompt import (
    MAX_RATIONALE_CHARS,
    RATIONALE_PROMPT,
    TEACHER_CONTEXT_BUDGET,
    RationaleJob,
    TeacherError,
    clean_rationale,
    teacher_messages,
)
from shop_r1.training.rationales.run import Failure, SynthesisReport, rate_limiter, synthesize
from shop_r1.training.rationales.teachers import (
    OpenAITeacher,
    TemplateTeacher,
    Teacher,
    TransformersTeacher,
    make_teacher,
)

__all__ = [
    "Failure", "MAX_RATIONALE_CHARS", "OpenAITeacher", "RATIONALE_PROMPT", "RationaleCache", "RationaleJob",
    "SynthesisReport", "TEACHER_CONTEXT_BUDGET", "Teacher", "TeacherError", "TemplateTeacher",
    "TransformersTeacher", "cache_key", "clean_rationale", "default_cache_dir", "make_teacher", "plan_jobs",
    "rate_limiter", "synthesize", "teacher_messages",
]
