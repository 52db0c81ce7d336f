"""Screenshots kept with a run: a JPEG per step beside the trace, typed text painted over when
redacting, and every session's steps in the report show them (inline up to a budget, linked
after; a path that leads outside the run is never followed). Real Chromium, the bundled shop."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image

from shop_r1.envs.browser import BrowserPool, SessionOptions
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.analysis.report import build_report
from shop_r1.simulator.analysis.report.shots import Screenshots
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.simulator.records.trace import read_trace


def test_run_keeps_a_screenshot_per_step_and_the_report_shows_them(fresh_shop, tmp_path: Path) -> None:
    cfg = RunConfig(shop_url=fresh_shop.url, shoppers=2, concurrency=2, max_steps=4, seed=4, out_dir=tmp_path,
                    screenshots=True)
    asyncio.run(Runner(cfg, ScriptedPolicy(seed=4), sample(2, seed=4)).run())
    trace = read_trace(tmp_path)
    assert trace.steps and not trace.problems
    for step in trace.steps:
        assert step.screenshot is not None and step.screenshot.startswith("screenshots/")
        data = (tmp_path / step.screenshot).read_bytes()
        assert data[:3] == b"\xff\xd8\xff"  # JPEG
        assert Image.open(io.BytesIO(data)).size[0] >= 800
    build_report(tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/jpeg;base64,') == len(trace.steps)

    linked = Screenshots(tmp_path, tmp_path, budget_bytes=0)
    img = linked.img(trace.steps[0])
    assert f'src="{trace.steps[0].screenshot}"' in img and linked.linked == 1
    outside = trace.steps[0].model_copy(update={"screenshot": "../../etc/passwd.jpg"})
    refused = linked.img(outside)
    assert "is missing" in refused and "src=" not in refused


def _magenta_share(data: bytes) -> float:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    px = list(img.getdata())
    return sum(1 for r, g, b in px if r > 200 and g < 90 and b > 200) / len(px)


def test_masking_paints_over_what_was_typed(fresh_shop) -> None:
    async def shots() -> tuple[bytes, bytes]:
        out = []
        async with BrowserPool() as pool:
            for mask in (False, True):
                session = await pool.new_session(f"m{mask}", options=SessionOptions(
                    screenshot=True, screenshot_type="jpeg", screenshot_mask_inputs=mask))
                page = await session.reset(fresh_shop.url)
                box = next(e for e in page.elements if e.kind == "input")
                await session.page.fill(box.selector, "4111 1111 1111 1111")
                out.append((await session.observe()).screenshot)
        return out[0], out[1]

    plain, masked = asyncio.run(shots())
    assert _magenta_share(plain) < 0.001 < _magenta_share(masked)
