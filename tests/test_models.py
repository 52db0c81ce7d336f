"""The tiny test models and the embedded default model (real transformers, real tokenizers)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from simulator.tiny_model import IM_END, build_tiny_model, tiny_model_dir


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
