"""Bad or huge input to ``shop-r1 reward``: one clear line naming what was wrong, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shop_r1.simulator.scoring import action_reward, rouge_l
from shop_r1.simulator.scoring.similarity import MAX_ROUGE_TOKENS

EXE = Path(sys.executable).parent / "shop-r1"
TERMINATE = '{"type":"terminate"}'


def _reward(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), "reward", *args], capture_output=True, text=True, timeout=120)


def test_non_utf8_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "answer.txt"
    bad.write_bytes(b"\xff\xfe not text")
    proc = _reward("--prediction", f"@{bad}", "--label", TERMINATE)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad} is not UTF-8 text (byte 0xff at offset 0)" in proc.stderr


def test_deeply_nested_label(tmp_path: Path) -> None:
    deep = tmp_path / "label.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    proc = _reward("--prediction", "x", "--label", f"@{deep}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nested too deeply" in proc.stderr


def test_megabyte_prediction_is_refused_with_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text(json.dumps({"rationale": "x", "action": {"type": "type_and_submit", "name": "q",
                                                            "text": "word " * 250_000}}))
    proc = _reward("--prediction", f"@{big}", "--label", TERMINATE)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "holds more than 262,144 characters" in proc.stderr


def test_long_texts_are_scored_on_their_first_tokens() -> None:
    short_a, short_b = "wireless noise cancelling headphones", "wireless cancelling headphones"
    assert rouge_l(short_a, short_b) == rouge_l(short_a + "", short_b + "")
    long_a = " ".join(f"w{i}" for i in range(MAX_ROUGE_TOKENS * 8))
    long_b = " ".join(f"w{i}" for i in range(MAX_ROUGE_TOKENS)) + " tail" * 5000
    assert rouge_l(long_a, long_b) == 1.0  # identical first MAX_ROUGE_TOKENS tokens
    label = {"type": "type_and_submit", "name": "q", "text": " ".join(["headphones"] * 4000)}
    answer = json.dumps({"rationale": "I search.", "action": {**label, "text": " ".join(["wireless"] * 4000)}})
    result = action_reward(answer, label)
    assert result.to_json()["value"] == 0.1  # the name matches; the dissimilar long text earns nothing


def test_report_and_data_build_refuse_an_empty_or_wrong_shape_trace(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for content, expect in (("", "holds no trace records (the file is empty)"),
                            ('{"a": 1}\n', "trace.jsonl:1: missing schema_version")):
        (run / "trace.jsonl").write_text(content)
        report = subprocess.run([str(EXE), "report", str(run)], capture_output=True, text=True, timeout=120)
        assert report.returncode == 1 and expect in report.stderr and "Traceback" not in report.stderr
        assert not (run / "report.html").exists()
        build = subprocess.run([str(EXE), "data", "build", str(run), "--out", str(tmp_path / "ds")],
                               capture_output=True, text=True, timeout=300)
        assert build.returncode == 1 and "no usable steps" in build.stderr and "Traceback" not in build.stderr
        assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").rglob("*.parquet"))
