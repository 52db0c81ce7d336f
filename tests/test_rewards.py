"""The Shop-R1 rewards pinned on hand-made cases (real rouge-score, real torch, real tokenizers)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.simulator import scoring as R
from shop_r1.simulator.cli.main import main as cli_main
from shop_r1.simulator.scoring import RewardConfig, action_reward, binary_reward

ROOT = Path(__file__).resolve().parents[1]


def answer(action: dict, rationale: str = "I want to see this product.") -> str:
    return json.dumps({"rationale": rationale, "action": action})


CLICK_LABEL = {"type": "click", "name": "results.sony_x.view_product"}
TAS_LABEL = {"type": "type_and_submit", "name": "search_input", "text": "wireless noise cancelling headphones"}


# ------------------------------------------------------------------ config


def test_config_defaults_are_the_papers() -> None:
    c = RewardConfig()
    assert (c.format_reward, c.type_reward, c.click_name_presence) == (0.5, 0.3, 0.2)
    assert (c.tas_name_presence, c.tas_text_presence, c.tas_name_similarity_weight) == (0.1, 0.1, 0.1)
    assert (c.dars, c.similarity_threshold, c.alpha, c.beta) == (1000.0, 0.75, 0.005, 0.001)
    assert c.threshold_inclusive and c.require_type_match and c.strict_format
    assert c.rouge_measure == "fmeasure"
    assert c.max_reward["terminate"] == pytest.approx(0.8)
    assert c.max_reward["click"] == pytest.approx(1001.0)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"dars": -1.0}, "dars"),
        ({"similarity_threshold": 1.5}, "similarity_threshold"),
        ({"rouge_measure": "f1"}, "rouge_measure"),
        ({"strict_format": 1}, "strict_format"),
        ({"alpha": float("nan")}, "alpha"),
        ({"type_reward": "0.3"}, "type_reward"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        RewardConfig(**kwargs)


# ------------------------------------------------------------------ similarity


def test_names_are_tokenized_into_words() -> None:
    tok = R.NameAwareTokenizer()
    assert tok.tokenize("results.sony_x.view_product") == ["results", "sony", "x", "view", "product"]
    assert tok.tokenize("Add-To-Cart  buy_now") == ["add", "to", "cart", "buy", "now"]
    assert R.rouge_l("results.sony_x.view_product", "results.sony_y.view_product") == pytest.approx(0.8)


def test_non_ascii_letters_are_kept_unlike_rouge_default() -> None:
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rougeL"]).score("über boots", "ber boots")["rougeL"].fmeasure
    assert default == pytest.approx(1.0)  # the default tokenizer deletes the "ü"
    assert R.rouge_l("über boots", "ber boots") == pytest.approx(0.5)
    assert R.rouge_l("ヘッドホン ソニー", "ヘッドホン ソニー") == pytest.approx(1.0)


def test_empty_side_has_no_similarity() -> None:
    assert R.rouge_l("", "anything") == 0.0
    assert R.rouge_l("search", "...") == 0.0


# ------------------------------------------------------------------ Table 1: click


def test_perfect_click() -> None:
    b = action_reward(answer(CLICK_LABEL), CLICK_LABEL)
    assert (b.format, b.type, b.attribute, b.value) == (0.5, 0.3, 0.2, pytest.approx(1000.0))
    assert b.total == pytest.approx(0.5 + 0.3 + 0.2 + 1000 * 1.0)
    assert b.parsed_action == Click(name="results.sony_x.view_product")


def test_similar_click_name_above_threshold_is_scaled_by_rouge() -> None:
    b = action_reward(answer({"type": "click", "name": "results.sony_y.view_product"}), CLICK_LABEL)
    assert b.similarities["name"] == pytest.approx(0.8)
    assert b.value == pytest.approx(1000 * 0.8)
    assert b.total == pytest.approx(1.0 + 800.0)


def test_click_name_below_threshold_earns_no_value() -> None:
    b = action_reward(answer({"type": "click", "name": "results.bose_qc.view_product"}), CLICK_LABEL)
    # tokens results/view/product shared out of 5 each: F = 0.6
    assert b.similarities["name"] == pytest.approx(0.6)
    assert b.value == 0.0
    assert b.total == pytest.approx(1.0)
    assert "0.60 < threshold 0.75 -> 0" in b.notes["value"]


def test_threshold_inclusive_vs_exclusive_at_exactly_075() -> None:
    label = {"type": "click", "name": "filters.brand.sony.apply"}
    pred = answer({"type": "click", "name": "filters.brand.bose.apply"})  # 3 of 4 tokens: P = R = F = 0.75
    inclusive = action_reward(pred, label)
    assert inclusive.similarities["name"] == 0.75
    assert inclusive.value == pytest.approx(750.0)
    exclusive = action_reward(pred, label, RewardConfig(threshold_inclusive=False))
    assert exclusive.value == 0.0
    assert exclusive.total == pytest.approx(1.0)


def test_recall_vs_fmeasure_vs_precision() -> None:
    label = {"type": "click", "name": "brand.sony"}
    pred = answer({"type": "click", "name": "refinements.brand.sony.apply"})  # P = 0.5, R = 1, F = 2/3
    assert action_reward(pred, label).value == 0.0
    assert action_reward(pred, label, RewardConfig(rouge_measure="recall")).value == pytest.approx(1000.0)
    assert action_reward(pred, label, RewardConfig(rouge_measure="precision")).value == 0.0
    lower = RewardConfig(rouge_measure="precision", similarity_threshold=0.5)
    assert action_reward(pred, label, lower).value == pytest.approx(500.0)


def test_dars_scales_the_value_term() -> None:
    b = action_reward(answer(CLICK_LABEL), CLICK_LABEL, RewardConfig(dars=1.0))
    assert b.total == pytest.approx(2.0)


# ------------------------------------------------------------------ Table 1: type_and_submit


def test_type_and_submit_components() -> None:
    pred = answer({"type": "type_and_submit", "name": "header.search_input",
                   "text": "wireless noise cancelling earbuds"})
    b = action_reward(pred, TAS_LABEL)
    # name: [header, search, input] vs [search, input] -> P 2/3, R 1, F 0.8
    # text: 3 of 4 words in order -> F 0.75
    assert b.similarities == {"name": pytest.approx(0.8), "text": pytest.approx(0.75)}
    assert b.attribute == pytest.approx(0.1 + 0.1)
    assert b.value == pytest.approx(0.1 * 0.8 + 1000 * 0.75)
    assert b.total == pytest.approx(0.5 + 0.3 + 0.2 + 0.08 + 750.0)


def test_type_and_submit_perfect_and_empty_text() -> None:
    perfect = action_reward(answer(TAS_LABEL), TAS_LABEL)
    assert perfect.total == pytest.approx(0.5 + 0.3 + 0.2 + 0.1 + 1000.0)
    empty = action_reward(answer({**TAS_LABEL, "text": "  "}), TAS_LABEL)
    assert empty.attribute == pytest.approx(0.1)  # name only
    assert empty.value == pytest.approx(0.1)  # name similarity only
    assert empty.total == pytest.approx(1.0)


def test_type_and_submit_text_below_threshold() -> None:
    b = action_reward(answer({**TAS_LABEL, "text": "red running shoes"}), TAS_LABEL)
    assert b.similarities["text"] == 0.0
    assert b.value == pytest.approx(0.1)
    assert b.total == pytest.approx(1.1)


# ------------------------------------------------------------------ Table 1: terminate and hacking


def test_terminate_correct_is_080() -> None:
    b = action_reward(answer({"type": "terminate"}), {"type": "terminate"})
    assert b.total == pytest.approx(0.8)
    assert action_reward(answer({"type": "terminate"}), Terminate()).total == pytest.approx(0.8)


def test_always_terminate_on_click_label_gets_format_only() -> None:
    b = action_reward(answer({"type": "terminate"}), CLICK_LABEL)
    assert b.to_json() == {"format": 0.5, "type": 0.0, "attribute": 0.0, "value": 0.0, "total": 0.5}


def test_type_mismatch_gets_format_only_when_type_match_required() -> None:
    pred = answer({"type": "type_and_submit", "name": "results.sony_x.view_product", "text": "x"})
    assert action_reward(pred, CLICK_LABEL).total == pytest.approx(0.5)
    loose = action_reward(pred, CLICK_LABEL, RewardConfig(require_type_match=False))
    assert (loose.type, loose.attribute, loose.value) == (0.0, 0.2, pytest.approx(1000.0))


@pytest.mark.parametrize(
    "text",
    [
        answer({"type": "click", "name": ""}),  # the schema says names are non-empty
        answer({"type": "click", "name": "   "}),
        '{"rationale": "I click", "action": {"type": "click", "name": "x"}',  # malformed JSON
        json.dumps({"action": CLICK_LABEL}),  # no rationale
        json.dumps({"rationale": "", "action": CLICK_LABEL}),
        json.dumps({"rationale": 3, "action": CLICK_LABEL}),
        json.dumps({"rationale": "r", "action": {"type": "scroll"}}),
        json.dumps({"rationale": "r", "action": {"type": "click", "name": "a", "extra": 1}}),
        json.dumps({"rationale": "r", "action": CLICK_LABEL, "confidence": 1.0}),
        json.dumps([{"rationale": "r", "action": CLICK_LABEL}]),
        "",
    ],
)
def test_format_failures_earn_nothing(text: str) -> None:
    b = action_reward(text, CLICK_LABEL)
    assert b.to_json() == {"format": 0.0, "type": 0.0, "attribute": 0.0, "value": 0.0, "total": 0.0}
    assert b.parsed_action is None
    assert b.reason.startswith("format invalid")


def test_strict_vs_lenient_format() -> None:
    fenced = "Sure {ok}. Here it is:\n```json\n" + answer(CLICK_LABEL) + "\n```"
    embedded = "My answer: " + answer(CLICK_LABEL) + " done."
    assert action_reward("  \n" + answer(CLICK_LABEL) + "\n", CLICK_LABEL).total == pytest.approx(1001.0)
    assert action_reward(fenced, CLICK_LABEL).total == 0.0
    lenient = RewardConfig(strict_format=False)
    assert action_reward(fenced, CLICK_LABEL, lenient).total == pytest.approx(1001.0)
    assert action_reward(embedded, CLICK_LABEL, lenient).total == pytest.approx(1001.0)


@pytest.mark.parametrize(
    ("switch", "expected"),
    [("use_format", 1000.5), ("use_type", 1000.7), ("use_attribute", 1000.8), ("use_value", 1.0)],
)
def test_ablation_switches_drop_one_component(switch: str, expected: float) -> None:
    b = action_reward(answer(CLICK_LABEL), CLICK_LABEL, RewardConfig(**{switch: False}))
    assert b.total == pytest.approx(expected)


def test_no_format_reward_still_gates_on_a_parseable_answer() -> None:
    assert action_reward("not json", CLICK_LABEL, RewardConfig(use_format=False)).total == 0.0


def test_label_forms_and_bad_labels() -> None:
    text = answer(CLICK_LABEL)
    for label in (CLICK_LABEL, Click(name=CLICK_LABEL["name"]), json.dumps(CLICK_LABEL),
                  {"rationale": "r", "action": CLICK_LABEL}):
        assert action_reward(text, label).total == pytest.approx(1001.0)
    with pytest.raises(R.LabelError, match="name"):
        action_reward(text, {"type": "click"})
    with pytest.raises(R.LabelError, match="not valid JSON"):
        action_reward(text, "{type: click}")


def test_batch_helper() -> None:
    assert R.hierarchical_rewards([answer(CLICK_LABEL), "x"], [CLICK_LABEL, CLICK_LABEL]) == [
        pytest.approx(1001.0), 0.0]
    with pytest.raises(ValueError, match="1 predictions but 2 labels"):
        R.hierarchical_rewards(["x"], [CLICK_LABEL, CLICK_LABEL])


# ------------------------------------------------------------------ binary reward


def test_binary_reward() -> None:
    assert binary_reward(answer(CLICK_LABEL), CLICK_LABEL) == 1.0
    assert binary_reward(answer({"type": "click", "name": "results.sony_y.view_product"}), CLICK_LABEL) == 0.0
    assert binary_reward(answer({**TAS_LABEL, "text": " Wireless  noise cancelling HEADPHONES "}), TAS_LABEL) == 1.0
    assert binary_reward(answer({**TAS_LABEL, "text": "wireless headphones"}), TAS_LABEL) == 0.0
    assert binary_reward(answer({"type": "terminate"}), {"type": "terminate"}) == 1.0
    assert binary_reward(answer({"type": "terminate"}), CLICK_LABEL) == 0.0
    assert binary_reward("{not json", CLICK_LABEL) == 0.0
    assert R.exact_match(TypeAndSubmit(name="a", text="x"), TypeAndSubmit(name="b", text="x")) is False


# ------------------------------------------------------------------ self-certainty


def test_self_certainty_uniform_is_zero_and_peaked_is_max() -> None:
    import torch

    vocab = 50
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert torch.allclose(R.self_certainty(torch.zeros(2, 3, vocab), mask, form="literal"), torch.zeros(2), atol=1e-7)
    peaked = torch.full((2, 3, vocab), -30.0)
    peaked[..., 7] = 30.0
    s = R.self_certainty(peaked, mask, form="literal")
    assert torch.allclose(s, torch.full((2,), math.log(vocab) / vocab), atol=1e-6)
    assert (s > 0.07).all()


def test_self_certainty_matches_hand_computation_and_mask() -> None:
    import torch

    # token 0: p = (1/4, 3/4); token 1: p = (1/2, 1/2); token 2 (action, masked out): peaked
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0], [0.0, 40.0]])
    mask = torch.tensor([True, True, False])
    by_hand = ((0.25 * math.log(0.25 * 2) + 0.75 * math.log(0.75 * 2)) + 0.0) / (2 * 2)
    s = R.self_certainty(logits, mask, form="literal")
    assert s.shape == ()
    assert s.item() == pytest.approx(by_hand, rel=1e-6)
    with_action = R.self_certainty(logits, torch.tensor([True, True, True]), form="literal")
    assert with_action.item() > s.item()  # the peaked action token would inflate it


def test_self_certainty_edges() -> None:
    import torch

    logits = torch.randn(2, 4, 8, dtype=torch.bfloat16, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])
    s = R.self_certainty(logits, mask)
    assert s.dtype == torch.float32 and s[1].item() == 0.0  # no rationale tokens -> 0
    s.sum().backward()
    assert logits.grad is not None and logits.grad[0, 2].abs().sum() == 0  # unmasked gets no gradient
    with pytest.raises(ValueError, match="mask shape"):
        R.self_certainty(torch.zeros(2, 4, 8), torch.ones(2, 5))
    ninf = torch.tensor([[0.0, 0.0, float("-inf"), float("-inf")]])
    # two live tokens of four, uniform over them: (log 4 - log 2) / 4
    assert R.self_certainty(ninf, torch.ones(1), form="literal").item() == pytest.approx(math.log(2) / 4, rel=1e-6)


# ------------------------------------------------------------------ rationale span and token mask


def test_rationale_char_span_with_escaped_quotes() -> None:
    rationale = 'I said "cheap" {not json} and a back\\slash'
    text = json.dumps({"rationale": rationale, "action": CLICK_LABEL})
    span = R.rationale_char_span(text)
    assert span is not None
    assert json.loads('"' + text[span[0]:span[1]] + '"') == rationale
    assert text[span[0] - 1] == '"' and text[span[1]] == '"'


def test_rationale_char_span_variants() -> None:
    action_first = '{"action": {"type": "click", "name": "a", "rationale": "nested"}, "rationale": "outer"}'
    s = R.rationale_char_span(action_first)
    assert s is not None and action_first[s[0]:s[1]] == "outer"
    prose = 'Sure {ok} -- {"rationale": "why", "action": {"type": "terminate"}}'
    s = R.rationale_char_span(prose)
    assert s is not None and prose[s[0]:s[1]] == "why"
    escaped_key = '{"\\u0072ationale": "esc", "action": {"type": "terminate"}}'
    s = R.rationale_char_span(escaped_key)
    assert s is not None and escaped_key[s[0]:s[1]] == "esc"
    truncated = '{"rationale": "I am still thin'
    assert R.rationale_char_span(truncated) == (15, len(truncated))
    assert R.rationale_char_span('{"rationale": 3, "action": {}}') is None
    assert R.rationale_char_span('{"action": {"type": "terminate"}}') is None
    assert R.rationale_char_span("no json at all") is None


def test_rationale_token_mask_with_a_real_bpe_tokenizer() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    text = answer({"type": "click", "name": "results.sony_x.view_product"},
                  rationale='These "Sony" headphones fit my budget.')
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([text] * 3, trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    enc = tok.encode(text)
    span = R.rationale_char_span(text)
    assert span is not None
    mask = R.rationale_token_mask(enc.offsets, span)
    assert mask == R.rationale_token_mask_for_text(text, enc.offsets)
    inside = [off for off, m in zip(enc.offsets, mask) if m]
    assert inside, "some tokens must be rationale tokens"
    covered = set().union(*(range(s, e) for s, e in inside))
    assert set(range(*span)) <= covered  # every rationale character is in a masked token
    action_at = text.index('"action"')
    assert all(e <= action_at for _, e in inside)  # no action token is masked
    assert R.rationale_token_mask([(0, 0), (span[0] - 1, span[0])], span) == [False, False]
    assert R.rationale_token_mask(enc.offsets, None) == [False] * len(enc.offsets)


# ------------------------------------------------------------------ objective


def test_total_reward() -> None:
    assert R.total_reward(1001.0, 0.2, 3.0) == pytest.approx(1001.0 + 0.005 * 0.2 - 0.001 * 3.0)
    assert R.total_reward(1.0, 1.0, 1.0, RewardConfig(alpha=0.0, beta=0.0)) == 1.0


def test_import_is_light() -> None:
    code = "import sys, shop_r1.simulator.scoring; print('torch' in sys.modules, 'rouge_score' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------ CLI


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli_main, ["reward", *args], input=input)


def test_cli_json_output() -> None:
    pred = answer({"type": "click", "name": "results.sony_y.view_product"})
    result = invoke("--prediction", pred, "--label", json.dumps(CLICK_LABEL), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == ["format", "type", "attribute", "value", "total", "exact", "binary"]
    assert all(isinstance(data[k], float) for k in R.COMPONENTS + ("total", "binary"))
    assert data["total"] == pytest.approx(801.0)
    assert data["exact"] is False and data["binary"] == 0.0


def test_cli_table_explains_threshold_and_reads_stdin() -> None:
    pred = answer({"type": "click", "name": "results.bose_qc.view_product"})
    result = invoke("--prediction", "-", "--label", json.dumps(CLICK_LABEL), input=pred)
    assert result.exit_code == 0, result.output
    assert "name similarity 0.60 < threshold 0.75 -> 0" in " ".join(result.output.split())
    assert "total" in result.output


def test_cli_options_file_and_binary(tmp_path: Path) -> None:
    pred_file = tmp_path / "pred.json"
    pred_file.write_text(answer({"type": "click", "name": "filters.brand.bose.apply"}))
    label = json.dumps({"type": "click", "name": "filters.brand.sony.apply"})
    at_075 = json.loads(invoke("--prediction", f"@{pred_file}", "--label", label, "--json").output)
    assert at_075["value"] == pytest.approx(750.0)
    high = json.loads(invoke("--prediction", f"@{pred_file}", "--label", label, "--json",
                             "--threshold", "0.8", "--dars", "10").output)
    assert high["value"] == 0.0 and high["total"] == pytest.approx(1.0)
    low = json.loads(invoke("--prediction", f"@{pred_file}", "--label", label, "--json", "--dars", "10").output)
    assert low["value"] == pytest.approx(7.5)
    binary = json.loads(invoke("--prediction", f"@{pred_file}", "--label", label, "--json",
                               "--reward", "binary").output)
    assert binary == {"format": 0.0, "type": 0.0, "attribute": 0.0, "value": 0.0, "total": 0.0,
                      "exact": False, "binary": 0.0}
    same = invoke("--prediction", answer(json.loads(label)), "--label", label, "--reward", "binary")
    assert same.exit_code == 0 and "matches the label exactly" in same.output


@pytest.mark.parametrize(
    ("label", "fragment"),
    [
        ("{type: click}", "not valid JSON"),
        ('{"type": "clik", "name": "a"}', "'clik' is not one of"),
        ('{"type": "click"}', "name"),
        ("@/nonexistent/label.json", "cannot read"),
    ],
)
def test_cli_bad_label_exits_2_naming_the_problem(label: str, fragment: str) -> None:
    result = invoke("--prediction", "x", "--label", label)
    assert result.exit_code == 2
    assert "--label" in result.output and fragment in result.output


def test_cli_real_subprocess() -> None:
    exe = ROOT / ".venv" / "bin" / "shop-r1"
    assert exe.exists(), f"console script missing: {exe}"
    proc = subprocess.run(
        [str(exe), "reward", "--prediction", answer(TAS_LABEL), "--label", json.dumps(TAS_LABEL), "--json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"format": 0.5, "type": 0.3, "attribute": 0.2,
                                       "value": pytest.approx(1000.1), "total": pytest.approx(1001.1),
                                       "exact": True, "binary": 1.0}


# ------------------------------------------------------------------ one definition of "exact"

#: (label, predicted action, exact?) -- near misses on both sides of the ROUGE-L threshold 0.75.
NEAR_MISSES = [
    (TAS_LABEL, {**TAS_LABEL, "text": "wireless cancelling headphones"}, True),  # F = 0.857: the case
    (TAS_LABEL, {**TAS_LABEL, "text": "Wireless Noise-Cancelling Headphones"}, True),  # case, punctuation
    (TAS_LABEL, {**TAS_LABEL, "text": "wireless noise cancelling headphones sony"}, True),  # F = 0.889
    (TAS_LABEL, {**TAS_LABEL, "text": "noise cancelling headphones"}, True),  # F = 0.857
    (TAS_LABEL, {**TAS_LABEL, "text": "wireless headphones"}, False),  # F = 0.667
    (TAS_LABEL, {**TAS_LABEL, "text": "bluetooth earbuds"}, False),
    (TAS_LABEL, {**TAS_LABEL, "name": "header.search_input"}, False),  # names are identifiers
    ({"type": "type_and_submit", "name": "q", "text": "red shoes"}, {"type": "type_and_submit", "name": "q",
                                                                     "text": "red running shoes"}, True),  # 0.8
    ({"type": "type_and_submit", "name": "q", "text": "a b c d"}, {"type": "type_and_submit", "name": "q",
                                                                   "text": "a b c x"}, True),  # exactly 0.75
    ({"type": "type_and_submit", "name": "q", "text": "a b c d"}, {"type": "type_and_submit", "name": "q",
                                                                   "text": "a b x y"}, False),  # 0.5
    (CLICK_LABEL, {"type": "click", "name": "results.sony_x.view_products"}, False),  # close name: not exact
    (CLICK_LABEL, CLICK_LABEL, True),
    (CLICK_LABEL, {"type": "terminate"}, False),
    ({"type": "terminate"}, {"type": "terminate"}, True),
]


@pytest.mark.parametrize(("label", "predicted", "exact"), NEAR_MISSES)
def test_binary_reward_and_metric_agree_on_near_misses(label: dict, predicted: dict, exact: bool) -> None:
    from shop_r1.envs.actions import parse_action

    text = answer(predicted)
    metric = R.compute_metrics([parse_action(predicted)], [parse_action(label)])
    assert R.is_exact(parse_action(predicted), parse_action(label)) is exact
    assert metric.exact_correct == int(exact)
    assert binary_reward(text, label) == (1.0 if exact else 0.0)
    # and the CLI's two verdicts are the same two functions
    data = json.loads(invoke("--prediction", text, "--label", json.dumps(label), "--json").output)
    assert data["exact"] is exact and data["binary"] == (1.0 if exact else 0.0)


def test_exact_follows_the_similarity_rule_of_the_config() -> None:
    label, pred = TAS_LABEL, {**TAS_LABEL, "text": "wireless cancelling headphones"}  # F 0.857, recall 0.75
    strict = RewardConfig(similarity_threshold=0.9)
    assert binary_reward(answer(pred), label, strict) == 0.0
    assert R.compute_metrics([R.coerce_label(pred)], [R.coerce_label(label)], strict).exact_correct == 0
    exclusive_recall = RewardConfig(rouge_measure="recall", threshold_inclusive=False)
    assert binary_reward(answer(pred), label, exclusive_recall) == 0.0
    assert not R.is_exact(R.coerce_label(pred), R.coerce_label(label), exclusive_recall)
