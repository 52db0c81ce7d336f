"""Decoding settings and per-request seeds, shared by every backend (HTTP, transformers, teachers).

One dataclass so a temperature means the same to a vLLM server and to a local ``generate``, and one
seed hash so "the run's seed" reproduces the same way everywhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings. ``None`` leaves the server's default (HTTP) or the local default.

    ``temperature`` 0 means greedy decoding. ``max_tokens`` bounds the answer (the transformers
    backend calls it ``max_new_tokens``).
    """

    temperature: float | None = 0.6  # the paper's sampling temperature
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


def seed_hash(*parts: object) -> int:
    """An unsigned 32-bit hash of ``parts`` (joined by ``:``): stable across runs, machines and
    Python versions, which ``hash()`` (salted per process) is not."""
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def derive_seed(base: int | None, *parts: object) -> int | None:
    """A per-request (or per-batch) seed from the run's seed: shoppers differ, a rerun repeats.

    Sending one seed with every request would make all shoppers in a batch sample the same
    tokens for the same prompt; hashing in who is asking (session, step) keeps runs reproducible
    without that correlation. 31 bits: what every server's and torch's seed accepts.
    """
    return None if base is None else seed_hash(base, *parts) & 0x7FFFFFFF


__all__ = ["SamplingParams", "derive_seed", "seed_hash"]
