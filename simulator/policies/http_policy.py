"""An OpenAI-compatible chat-completions client and the policy built on it.

Both HTTP backends (a local vLLM server and any OpenAI-compatible API) speak the same
``POST {base_url}/chat/completions`` protocol, so they share this one client. It is written on
``httpx.AsyncClient`` rather than the ``openai`` SDK: the simulator needs only one endpoint, and
owning the request lets us bound concurrency, retries and timeouts exactly and record token usage
and latency per call without another heavy dependency.

Failure policy: the *client* raises :class:`ChatRequestError` once its bounded retries are spent;
the *policy* turns every failure (HTTP, timeout, unparsable output) into a
:class:`~shop_r1.simulator.policies.base.PolicyResponse` with ``error`` set, because one shopper's bad
call must never abort the batch the runner is waiting on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shop_r1.simulator.policies.base import Policy, PolicyRequest, PolicyResponse

logger = logging.getLogger(__name__)

#: HTTP statuses worth retrying: rate limiting, and the server-side failures that are usually
#: transient (overload, restart, gateway hiccups). Other 4xx mean the request itself is wrong.
RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})


class ChatRequestError(RuntimeError):
    """A chat-completions call that failed for good (after retries, or not retryable).

    ``code`` is a short machine-readable reason recorded in traces: ``http_<status>``,
    ``timeout``, ``connection`` or ``bad_response``.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings sent with every request (``None`` leaves the server's default)."""

    temperature: float | None = 0.6
    top_p: float | None = None
    max_tokens: int | None = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.temperature is not None and self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True)
class ChatResult:
    """One successful completion with what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float  # wall time of the whole call, retries and back-off included
    attempts: int
    finish_reason: str | None = None
    model: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class ClientStats:
    """Counters a benchmark or a test can read; cheap to keep, never reset implicitly."""

    requests: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatClient:
    """Async client for ``POST {base_url}/chat/completions`` with bounded concurrency and retries.

    ``base_url`` is the API root including ``/v1`` (what OpenAI calls ``base_url``). At most
    ``max_concurrency`` calls are in flight at once, whatever the number of callers: a local
    server degrades badly when flooded and a paid API rate-limits. Retries use exponential
    back-off with full jitter, honour ``Retry-After`` (capped by ``max_backoff_s``) and are bounded
    by ``max_retries`` so a dead endpoint fails a step in bounded time.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 3,
        timeout_s: float = 120.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 20.0,
        headers: Mapping[str, str] | None = None,
        max_tokens_field: str = "max_tokens",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("model name must not be empty")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_tokens_field = max_tokens_field
        self.stats = ClientStats()
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._transport = transport
        # httpx clients and semaphores belong to one event loop; create them on first use in the
        # running loop and again if the caller moves to another loop (e.g. one asyncio.run per CLI
        # command, or pytest's per-test loops).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _ensure(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._http is None or self._sem is None or self._loop is not loop:
            self._loop = loop
            limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s), limits=limits, headers=self._headers, transport=self._transport
            )
            self._sem = asyncio.Semaphore(self.max_concurrency)
        return self._http, self._sem

    def build_body(
        self,
        messages: Sequence[Mapping[str, Any]],
        sampling: SamplingParams,
        *,
        seed: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON body of one request; ``None`` settings are left out so server defaults apply."""
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if sampling.temperature is not None:
            body["temperature"] = sampling.temperature
        if sampling.top_p is not None:
            body["top_p"] = sampling.top_p
        if sampling.max_tokens is not None:
            body[self.max_tokens_field] = sampling.max_tokens
        if seed is not None:
            body["seed"] = seed
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if response_format is not None:
            body["response_format"] = dict(response_format)
        if extra_body:
            body.update(extra_body)
        return body

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff_s)
            except ValueError:
                pass  # an HTTP date; fall back to our own schedule
        ceiling = min(self.backoff_s * (2**attempt), self.max_backoff_s)
        return random.uniform(ceiling / 2, ceiling)

    async def complete(self, body: Mapping[str, Any]) -> ChatResult:
        """Send one request body; return the first choice or raise :class:`ChatRequestError`."""
        http, sem = self._ensure()
        t0 = time.perf_counter()
        self.stats.requests += 1
        last: ChatRequestError | None = None
        async with sem:
            self.stats.in_flight += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
            try:
                for attempt in range(self.max_retries + 1):
                    if attempt:
                        self.stats.retries += 1
                    self.stats.attempts += 1
                    retry_after: str | None = None
                    try:
                        resp = await http.post(self.url, json=body)
                    except httpx.TimeoutException as exc:
                        last = ChatRequestError("timeout", f"{self.url}: no answer within {self.timeout_s:g} s ({type(exc).__name__})")
                    except httpx.TransportError as exc:
                        last = ChatRequestError("connection", f"{self.url}: {type(exc).__name__}: {exc}")
                    else:
                        if resp.status_code == 200:
                            return self._result(resp, t0, attempt + 1)
                        detail = resp.text[:300].strip()
                        last = ChatRequestError(
                            f"http_{resp.status_code}", f"{self.url}: HTTP {resp.status_code}: {detail}", status=resp.status_code
                        )
                        if resp.status_code not in RETRY_STATUSES:
                            break
                        retry_after = resp.headers.get("retry-after")
                    if attempt < self.max_retries:
                        # The slot stays held while backing off on purpose: an overloaded or
                        # rate-limiting server should see fewer calls, not a refilled queue.
                        delay = self._backoff(attempt, retry_after)
                        logger.info("chat call failed (%s); retry %d/%d in %.2f s", last, attempt + 1, self.max_retries, delay)
                        await asyncio.sleep(delay)
            finally:
                self.stats.in_flight -= 1
        assert last is not None  # the loop runs at least once and only leaves early on failure
        last.attempts = attempt + 1
        self.stats.failures += 1
        if last.status is None or last.status in RETRY_STATUSES:
            last.args = (f"{last.args[0]} (gave up after {attempt + 1} attempts)",)
        raise last

    def _result(self, resp: httpx.Response, t0: float, attempts: int) -> ChatResult:
        try:
            data = resp.json()
            choice = data["choices"][0]
            message = choice.get("message") or {}
            text = message.get("content")
            if text is None:
                # Some servers return reasoning-only or refusal messages with null content.
                text = message.get("refusal") or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatRequestError(
                "bad_response", f"{self.url}: response is not a chat completion ({type(exc).__name__}: {exc}): {resp.text[:200]!r}",
                status=resp.status_code, attempts=attempts,
            ) from exc
        usage = data.get("usage") or {}
        result = ChatResult(
            text=str(text),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=time.perf_counter() - t0,
            attempts=attempts,
            finish_reason=choice.get("finish_reason"),
            model=str(data.get("model") or ""),
            raw=data,
        )
        self.stats.prompt_tokens += result.prompt_tokens
        self.stats.completion_tokens += result.completion_tokens
        return result

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves (``GET {base_url}/models``)."""
        http, _ = self._ensure()
        resp = await http.get(f"{self.base_url}/models")
        resp.raise_for_status()
        return [m["id"] for m in resp.json().get("data", [])]

    async def aclose(self) -> None:
        if self._http is not None:
            try:
                await self._http.aclose()
            except RuntimeError:  # its loop is gone already; nothing left to release
                pass
        self._http = None
        self._sem = None
        self._loop = None


def derive_seed(base: int | None, session_id: str, step: int) -> int | None:
    """A per-request seed from the run's seed: shoppers differ, a rerun repeats exactly.

    Sending one seed with every request would make all shoppers in a batch sample the same
    tokens for the same prompt; hashing in the session and step keeps runs reproducible without
    that correlation.
    """
    if base is None:
        return None
    digest = hashlib.blake2b(f"{base}:{session_id}:{step}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


class HTTPChatPolicy(Policy):
    """A policy answered by an OpenAI-compatible chat-completions endpoint.

    Prompts come from ``request.messages`` or, when absent, from
    :func:`shop_r1.simulator.prompt.build_messages`; answers are parsed by
    :func:`shop_r1.simulator.prompt.parse_output` against the current page's names and kinds, so the
    prompt format has exactly one owner. Subclasses choose a ``response_format`` per request
    (:meth:`response_format_for`).
    """

    name = "http"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        sampling: SamplingParams | None = None,
        max_concurrency: int = 8,
        max_retries: int = 3,
        timeout_s: float = 120.0,
        backoff_s: float = 0.5,
        token_budget: int = 6000,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_tokens_field: str = "max_tokens",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client = ChatClient(
            base_url, model, api_key=api_key, max_concurrency=max_concurrency, max_retries=max_retries,
            timeout_s=timeout_s, backoff_s=backoff_s, headers=headers, max_tokens_field=max_tokens_field,
            transport=transport,
        )
        self.sampling = sampling or SamplingParams()
        self.token_budget = token_budget
        self.extra_body = dict(extra_body or {})

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def base_url(self) -> str:
        return self.client.base_url

    # -- hooks -------------------------------------------------------------------------------
    def response_format_for(self, request: PolicyRequest) -> dict[str, Any] | None:
        """The ``response_format`` for one request; ``None`` sends none (free text)."""
        return None

    def extra_body_for(self, request: PolicyRequest) -> dict[str, Any]:
        """Server-specific body fields for one request (default: the policy's ``extra_body``)."""
        return dict(self.extra_body)

    def messages_for(self, request: PolicyRequest) -> list[dict[str, str]]:
        if request.messages is not None:
            return request.messages
        from shop_r1.simulator.prompt import build_messages  # lazy: the prompt owner sits beside us

        return build_messages(request.observation, request.history, request.persona, token_budget=self.token_budget)

    # -- Policy ------------------------------------------------------------------------------
    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        """Answer all requests concurrently (at most ``max_concurrency`` in flight), in order."""
        return list(await asyncio.gather(*(self._act_one(r) for r in requests)))

    async def _act_one(self, request: PolicyRequest) -> PolicyResponse:
        t0 = time.perf_counter()
        try:
            messages = self.messages_for(request)
            body = self.client.build_body(
                messages, self.sampling,
                seed=derive_seed(self.sampling.seed, request.session_id, request.step),
                response_format=self.response_format_for(request),
                extra_body=self.extra_body_for(request),
            )
        except Exception as exc:  # a bad request must not sink the batch
            logger.exception("could not build the request for session %s step %d", request.session_id, request.step)
            return PolicyResponse(action=None, error=f"prompt_error: {type(exc).__name__}: {exc}",
                                  latency_s=time.perf_counter() - t0)
        try:
            result = await self.client.complete(body)
        except ChatRequestError as exc:
            logger.warning("session %s step %d: %s", request.session_id, request.step, exc)
            return PolicyResponse(action=None, error=f"{exc.code}: {exc}", latency_s=time.perf_counter() - t0,
                                  extra={"error_code": exc.code, "attempts": exc.attempts, "status": exc.status})
        except Exception as exc:  # unexpected: record, never raise
            logger.exception("session %s step %d: unexpected failure", request.session_id, request.step)
            return PolicyResponse(action=None, error=f"internal: {type(exc).__name__}: {exc}",
                                  latency_s=time.perf_counter() - t0, extra={"error_code": "internal"})
        return self._parse(request, result)

    def _parse(self, request: PolicyRequest, result: ChatResult) -> PolicyResponse:
        from shop_r1.simulator.prompt import parse_output  # lazy, as above

        obs = request.observation
        kinds = {el.name: el.kind for el in obs.elements}
        extra: dict[str, Any] = {"attempts": result.attempts, "finish_reason": result.finish_reason}
        try:
            parsed = parse_output(result.text, list(kinds), kinds)
        except Exception as exc:  # parse_output promises not to raise; guard anyway
            logger.exception("parse_output raised on session %s step %d", request.session_id, request.step)
            parsed_action, rationale, error = None, "", f"internal: parse_output raised {type(exc).__name__}: {exc}"
        else:
            parsed_action, rationale = parsed.action, parsed.rationale or ""
            error = None if parsed.action is not None else f"{parsed.error_code}: {parsed.error}"
            extra["strict_json"] = parsed.strict
            extra["extraction"] = parsed.how
            if parsed.action is None:
                extra["error_code"] = parsed.error_code
        if error and result.finish_reason == "length":
            error += " (output cut at max_tokens)"
        return PolicyResponse(
            action=parsed_action, rationale=rationale, raw_text=result.text, error=error,
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            latency_s=result.latency_s, extra=extra,
        )

    async def close(self) -> None:
        await self.client.aclose()

    def describe(self) -> dict[str, Any]:
        s = self.sampling
        return {
            "policy": self.name, "model": self.model, "base_url": self.base_url,
            "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": s.seed,
            "max_concurrency": self.client.max_concurrency, "max_retries": self.client.max_retries,
        }
