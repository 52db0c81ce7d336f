"""Tiny, randomly initialised Qwen2 models for tests and smoke runs.

The real default model (SmolLM2-135M) costs ~40 s to convert and seconds per step on CPU; unit
tests of the policy backend, the vLLM server wrapper and the trainers need a model that builds
in about a second yet is a *standard* Qwen2 checkpoint: ``AutoModelForCausalLM``,
``AutoTokenizer`` and vLLM must load it exactly like a hub model, so the code paths exercised by
the tests are the production ones.

Design choices that matter downstream:

* head_dim 32 (hidden 128 / 4 heads): vLLM's CPU attention kernels refuse head_dim < 32.
* ``tie_word_embeddings=False``: vLLM's ``reload_weights`` (used for weight sync during GRPO)
  needs a separate ``lm_head``.
* The tokenizer is a byte-level BPE built with Qwen2's exact normalizer and pre-tokenizer.
  transformers 5 rebuilds a ``Qwen2Tokenizer`` from vocab + merges and re-attaches *its own*
  pipeline, so any other pipeline would tokenize differently after a reload.
* The ChatML template wraps assistant content in ``{% generation %}`` markers so TRL's
  ``assistant_only_loss`` can find the assistant tokens.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shop_r1.envs.cache import cache_dir

log = logging.getLogger(__name__)

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, IM_START, IM_END)

#: Target vocabulary size of the tiny BPE (256 byte symbols + 3 specials + merges).
VOCAB_SIZE = 800


@dataclass(frozen=True)
class TinyShape:
    """Sizes of a model built here. ``TINY`` is what tests use (builds in about a second);
    ``SMALL`` is the smallest shape found that learns the answer format from a few hundred
    recorded steps under free decoding (``bench/paper_table.py``): the 2-layer, 128-wide model
    stays at ~0.6 token accuracy and never closes the JSON, because copying an element name
    out of a 3k-token page needs more than 2 layers, and an 800-symbol BPE spends ~100 tokens
    on one answer. head_dim stays 32 (vLLM's CPU kernels refuse less)."""

    vocab_size: int = VOCAB_SIZE
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2


TINY = TinyShape()
SMALL = TinyShape(vocab_size=4096, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=4)
#: The tiny network with the small shape's BPE: the larger vocabulary writes a page in fewer tokens
#: (99 % of test labels stay in a 3,072-token prompt, against 85 % of a 3,584-token one with the
#: 800-symbol BPE) and an answer in about half as many, which is what the fast path pays for.
TINY4K = TinyShape(vocab_size=SMALL.vocab_size)
#: Shapes by name, as ``tiny[:SEED]`` / ``small[:SEED]`` / ``tiny4k[:SEED]`` model specs name them.
SHAPES: dict[str, TinyShape] = {"tiny": TINY, "small": SMALL, "tiny4k": TINY4K}

#: Same regex as ``transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX``; duplicated
#: so that building a tokenizer does not import transformers (~5 s).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: ChatML with generation markers (see module docstring). ``add_generation_prompt`` opens an
#: assistant turn, exactly like Qwen2.5's template.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# The built-in corpus: what a shopper policy reads and writes (JSON punctuation, reduced HTML,
# the action words, shop vocabulary). Small on purpose; merges only need to be plausible.
_DEFAULT_CORPUS: tuple[str, ...] = (
    '{"rationale": "I want to find a cheap laptop, so I search for it.", '
    '"action": {"type": "type_and_submit", "name": "search_input", "text": "cheap laptop"}}',
    '{"rationale": "This product looks good and the price is fine.", '
    '"action": {"type": "click", "name": "product_list.item_3.view_product"}}',
    '{"rationale": "Nothing here fits my budget, I give up.", "action": {"type": "terminate"}}',
    '{"rationale": "I add it to my cart.", "action": {"type": "click", "name": "add_to_cart"}}',
    '{"rationale": "I need the blue one in size M.", '
    '"action": {"type": "click", "name": "product_options.color.blue"}}',
    '<html><head><title>Shop - Search results</title></head><body>',
    '<header><a name="home_link">Home</a><input name="search_input" type="search" '
    'placeholder="Search products"/><button name="search_button">Search</button>'
    '<a name="cart_link">Cart (0)</a></header>',
    '<main><div class="results"><h1>Results for "running shoes"</h1><ul>'
    '<li><a name="product_list.item_1.view_product">Trail running shoes</a> <span>$59.99</span>'
    '</li><li><a name="product_list.item_2.view_product">Wireless earbuds</a> '
    '<span>$24.50</span></li></ul>',
    '<div name="refinements"><label><input type="checkbox" name="refinements.customer_reviews"/>'
    ' 4 stars &amp; up</label><select name="sort_by"><option>Price: low to high</option>'
    '<option>Price: high to low</option><option>Newest</option></select></div>',
    '<section name="product_detail"><h2>Stainless steel water bottle</h2><p>Rating 4.5 out of 5'
    ' (1,203 reviews)</p><p>Price $18.99. Free delivery. In stock.</p>'
    '<button name="add_to_cart">Add to cart</button><button name="add_to_cart.buy_now">Buy now'
    '</button><a name="reviews_link">See all reviews</a></section></main></body></html>',
    "You are a shopper. Persona: a 34 year old teacher who likes good value, reads reviews and "
    "compares prices before buying. Intent: buy a gift for a friend under 50 dollars.",
    "Answer with ONE JSON object: the rationale and the next action. Actions: click, "
    "type_and_submit, terminate. Use only element names from the page.",
    "checkout cart quantity price rating reviews brand color size category next page previous "
    "filter sort search results product details description features shipping return policy",
    "0 1 2 3 4 5 6 7 8 9 10 12 15 19.99 24.99 49.99 99 100 $ % & # @ ( ) [ ] { } < > / \\ : ; ,",
)


def default_corpus() -> list[str]:
    """The built-in training text of the tiny tokenizer."""
    return list(_DEFAULT_CORPUS)


def _train_tokenizer(corpus: list[str], vocab_size: int):
    """A byte-level BPE with Qwen2's pipeline, trained on ``corpus``.

    Deterministic: the BPE trainer breaks count ties by token order, and the corpus order is
    fixed. ``initial_alphabet`` holds all 256 byte symbols, so any text stays encodable.
    """
    # optional heavy dependencies: loaded only when a model is built
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                        fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeat the corpus a few times so that pairs seen once still reach min_frequency.
    tok.train_from_iterator([t for _ in range(3) for t in corpus], trainer=trainer)
    return tok


def build_tiny_model(out_dir: Path, seed: int = 0, corpus: Iterable[str] | None = None,
                     shape: TinyShape = TINY) -> Path:
    """Build a tiny random Qwen2ForCausalLM + tokenizer into ``out_dir`` and return it.

    ``corpus`` (e.g. page texts) replaces the built-in tokenizer corpus. The same seed, corpus
    and shape give byte-identical weights and tokenizer files.
    """
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = [t for t in (corpus if corpus is not None else _DEFAULT_CORPUS) if t]
    if not texts:
        raise ValueError("build_tiny_model: the corpus is empty; pass some text or None for the default")

    raw = _train_tokenizer(texts + list(_DEFAULT_CORPUS) if corpus is not None else texts,
                           shape.vocab_size)
    pad_id, im_start_id, im_end_id = (raw.token_to_id(t) for t in SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=None,
        bos_token=None,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    # Make AutoTokenizer pick Qwen2's class (it re-creates the same pipeline, see docstring).
    cfg_path = out_dir / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_path.read_text())
    tok_cfg["tokenizer_class"] = "Qwen2Tokenizer"
    tok_cfg["errors"] = "replace"
    tok_cfg["add_prefix_space"] = False
    cfg_path.write_text(json.dumps(tok_cfg, indent=2, sort_keys=True) + "\n")

    config = Qwen2Config(
        vocab_size=raw.get_vocab_size(),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=im_start_id,
        eos_token_id=im_end_id,
        pad_token_id=pad_id,
        use_sliding_window=False,
    )
    torch.manual_seed(seed)
    # transformers declares .to through functools.wraps(nn.Module.to), which keeps the unbound
    # signature (self first): mypy then reads the dtype as `self`.
    model = Qwen2ForCausalLM(config).to(torch.float32)  # type: ignore[arg-type]
    model.generation_config = GenerationConfig(
        eos_token_id=im_end_id, pad_token_id=pad_id, bos_token_id=im_start_id, do_sample=False
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    log.info("built Qwen2 model %s (vocab %d, seed %d) in %s", shape, config.vocab_size, seed, out_dir)
    return out_dir


def tiny_model_dir(seed: int = 0) -> Path:
    """A cached tiny model for ``seed``, built once per machine.

    Built in a temporary sibling folder and renamed into place, so concurrent test processes
    never see a half-written model: the loser of the rename race discards its copy.
    """
    target = cache_dir("tiny-models", f"qwen2-tiny-s{seed}")
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    parent = target.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        build_tiny_model(tmp, seed=seed)
        # cache_dir() created an empty target; replace it only if it is still empty.
        try:
            target.rmdir()
        except OSError:
            pass  # someone else filled it meanwhile (or it is non-empty): fall through
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


__all__ = [
    "CHAT_TEMPLATE",
    "IM_END",
    "IM_START",
    "PAD_TOKEN",
    "SHAPES",
    "SMALL",
    "SPECIAL_TOKENS",
    "TINY",
    "TinyShape",
    "build_tiny_model",
    "default_corpus",
    "tiny_model_dir",
]
