"""The one OpenAI-compatible chat-completions client: the official ``openai`` SDK, bounded.

Every HTTP backend (a local vLLM server, any OpenAI-compatible API, a rationale teacher) speaks
``POST {base_url}/chat/completions`` through :class:`ChatClient`. The SDK owns retries (408, 409,
429, 5xx and connection errors, exponential back-off with jitter, ``Retry-After`` honoured),
timeouts and response parsing; this wrapper adds what the simulator needs on top: at most
``max_concurrency`` calls in flight whatever the number of shoppers, token usage and latency per
call, counters a benchmark can read, and one error type with a short machine-readable code.

Failure policy: the client raises :class:`ChatRequestError` once the SDK's retries are spent; the
*policies* turn it into a :class:`~shop_r1.envs.actions.ParseError` on the response, because one
shopper's failed call must never abort the batch the runner is waiting on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from shop_r1.envs.actions import ParseError
from shop_r1.simulator.agent.llm.endpoint import Endpoint
from shop_r1.simulator.agent.llm.sampling import SamplingParams

logger = logging.getLogger(__name__)

#: Header the SDK puts on every attempt: how many retries preceded it.
_RETRY_COUNT_HEADER = "x-stainless-retry-count"


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

    def as_parse_error(self) -> ParseError:
        """The step's error as the trace records it: no text was generated, and why."""
        return ParseError(code="generation_failed", message=str(self),
                          detail={"reason": self.code, "status": self.status, "attempts": self.attempts})


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


def _attempts_of(request: Any) -> int:
    """Attempts made so far, read from the SDK's retry-count header of the last request."""
    try:
        return int(request.headers.get(_RETRY_COUNT_HEADER, 0)) + 1
    except (AttributeError, TypeError, ValueError):
        return 1


class ChatClient:
    """Async client for ``{base_url}/chat/completions`` with bounded concurrency.

    ``base_url`` is the API root including ``/v1`` (what OpenAI calls ``base_url``). A request
    keeps its concurrency slot while the SDK backs off between retries, on purpose: an overloaded
    or rate-limiting server should see fewer calls, not a refilled queue.
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
        headers: Mapping[str, str] | None = None,
        max_tokens_field: str = "max_tokens",
    ) -> None:
        if not model:
            raise ValueError("model name must not be empty")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError(f"max_tokens_field must be max_tokens or max_completion_tokens, got {max_tokens_field!r}")
        self.endpoint = Endpoint(base_url, api_key)
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.max_tokens_field = max_tokens_field
        self.headers = dict(headers or {})
        self.stats = ClientStats()
        # SDK clients (their connection pool) and semaphores belong to one event loop; create
        # them on first use in the running loop and again if the caller moves to another loop
        # (one asyncio.run per CLI command, pytest's per-test loops).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sdk: openai.AsyncOpenAI | None = None
        self._sem: asyncio.Semaphore | None = None

    @property
    def base_url(self) -> str:
        return self.endpoint.base_url

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _ensure(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._sdk is None or self._sem is None or self._loop is not loop:
            self._loop = loop
            # The SDK insists on a key; a keyless local server (vLLM without --api-key) ignores
            # the placeholder, which is the one vLLM's own docs use.
            self._sdk = openai.AsyncOpenAI(
                base_url=self.base_url, api_key=self.endpoint.api_key or "EMPTY", max_retries=self.max_retries,
                timeout=self.timeout_s, default_headers=self.headers or None,
            )
            self._sem = asyncio.Semaphore(self.max_concurrency)
        return self._sdk, self._sem

    def request_kwargs(
        self,
        messages: Sequence[Mapping[str, Any]],
        sampling: SamplingParams,
        *,
        seed: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The arguments of one ``chat.completions.create``; ``None`` settings are left out so
        server defaults apply. ``extra_body`` carries server-specific fields (vLLM's)."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if sampling.temperature is not None:
            kwargs["temperature"] = sampling.temperature
        if sampling.top_p is not None:
            kwargs["top_p"] = sampling.top_p
        if sampling.max_tokens is not None:
            kwargs[self.max_tokens_field] = sampling.max_tokens
        if seed is not None:
            kwargs["seed"] = seed
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        if response_format is not None:
            kwargs["response_format"] = dict(response_format)
        if extra_body:
            kwargs["extra_body"] = dict(extra_body)
        return kwargs

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        sampling: SamplingParams,
        *,
        seed: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatResult:
        """One chat completion (its first choice), or :class:`ChatRequestError`."""
        kwargs = self.request_kwargs(messages, sampling, seed=seed, response_format=response_format,
                                     extra_body=extra_body)
        sdk, sem = self._ensure()
        t0 = time.perf_counter()
        self.stats.requests += 1
        async with sem:
            self.stats.in_flight += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
            try:
                raw = await sdk.chat.completions.with_raw_response.create(**kwargs)
            except openai.APIStatusError as exc:
                detail = exc.response.text[:300].strip()
                raise self._failed(ChatRequestError(
                    f"http_{exc.status_code}", f"{self.url}: HTTP {exc.status_code}: {detail}",
                    status=exc.status_code, attempts=_attempts_of(exc.response.request))) from None
            except openai.APITimeoutError as exc:
                raise self._failed(ChatRequestError(
                    "timeout", f"{self.url}: no answer within {self.timeout_s:g} s",
                    attempts=_attempts_of(exc.request))) from None
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                raise self._failed(ChatRequestError(
                    "connection", f"{self.url}: {type(cause).__name__}: {cause}",
                    attempts=_attempts_of(exc.request))) from None
            finally:
                self.stats.in_flight -= 1
        attempts = raw.retries_taken + 1
        self._count(attempts)
        return self._result(raw, t0, attempts)

    def _count(self, attempts: int) -> None:
        self.stats.attempts += attempts
        self.stats.retries += attempts - 1

    def _failed(self, err: ChatRequestError) -> ChatRequestError:
        self._count(err.attempts)
        self.stats.failures += 1
        if err.attempts > 1:
            err.args = (f"{err.args[0]} (gave up after {err.attempts} attempts)",)
        logger.info("chat call failed: %s", err)
        return err

    def _result(self, raw: Any, t0: float, attempts: int) -> ChatResult:
        try:
            completion = raw.parse()
            choice = completion.choices[0]
            message = choice.message
            # Some servers return reasoning-only or refusal messages with null content.
            text = message.content if message.content is not None else (message.refusal or "")
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            self.stats.failures += 1
            raise ChatRequestError(
                "bad_response", f"{self.url}: response is not a chat completion ({type(exc).__name__}: {exc}): "
                f"{raw.http_response.text[:200]!r}", status=raw.status_code, attempts=attempts,
            ) from None
        usage = completion.usage
        result = ChatResult(
            text=str(text),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_s=time.perf_counter() - t0,
            attempts=attempts,
            finish_reason=choice.finish_reason,
            model=str(getattr(completion, "model", "") or ""),
            raw=completion.model_dump(),
        )
        self.stats.prompt_tokens += result.prompt_tokens
        self.stats.completion_tokens += result.completion_tokens
        return result

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves (``GET {base_url}/models``)."""
        sdk, _ = self._ensure()
        return [m.id async for m in sdk.models.list()]

    async def aclose(self) -> None:
        if self._sdk is not None:
            try:
                await self._sdk.close()
            except RuntimeError:  # its loop is gone already; nothing left to release
                pass
        self._sdk = None
        self._sem = None
        self._loop = None


__all__ = ["ChatClient", "ChatRequestError", "ChatResult", "ClientStats"]
