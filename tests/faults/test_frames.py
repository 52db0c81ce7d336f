"""Controls inside iframes and shadow roots: seen, named, usable — or reported when they cannot be.

Real Chromium, real sessions, the fault shop's ``/frames`` (a same-origin iframe with a form, a
cross-origin iframe, an open and a closed shadow root) and ``/components`` (a web component that
slots a light-DOM link, a nested open root with a labelled select, a srcdoc frame holding a
shadow-root button).
"""

from __future__ import annotations


import lxml.html

from shop_r1.envs.browser import BrowserPool
from shop_r1.envs.observation import Element, Observation, UnreadablePart
from shop_r1.envs.reducer import NAME_RE
from tests.faults.fault_shop import FaultShops


def by_text(obs: Observation, text: str) -> Element:
    found = [el for el in obs.elements if el.text.strip() == text]
    assert len(found) == 1, f"{text!r} on {obs.url}: {[(e.name, e.text) for e in obs.elements]}"
    return found[0]


def html_names(obs: Observation) -> list[str]:
    root = lxml.html.fragment_fromstring(obs.simplified_html, create_parent="div")
    return [el.get("name") for el in root.iter() if el.get("name")]


def assert_names_unique(obs: Observation) -> None:
    names = obs.names
    assert len(names) == len(set(names)), names
    assert all(NAME_RE.match(n) for n in names), names
    in_html = html_names(obs)
    assert len(in_html) == len(set(in_html)) and set(in_html) <= set(names), (in_html, names)


async def test_same_origin_frame_and_open_shadow_root_are_read_and_used(shops: FaultShops,
                                                                        pool: BrowserPool) -> None:
    session = await pool.new_session("frames")
    obs = await session.reset(shops.url + "/frames")
    code = by_text(obs, "Gift card code")
    apply = by_text(obs, "Apply code")
    shadow = by_text(obs, "Shadow deals")
    assert code.kind == "input" and apply.kind == shadow.kind == "clickable"
    # hierarchical like the rest: the frame's controls sit under the frame's title
    assert code.name.startswith("payment.") and apply.name.startswith("payment.")
    assert_names_unique(obs)
    assert code.name in obs.simplified_html and shadow.name in obs.simplified_html

    result = await session.step({"type": "type_and_submit", "name": code.name, "text": "GIFT10"})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url == shops.url + "/search?q=GIFT10"

    obs = await session.reset(shops.url + "/frames")
    result = await session.step({"type": "click", "name": by_text(obs, "Apply code").name})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url.startswith(shops.url + "/search?q=")

    obs = await session.reset(shops.url + "/frames")
    result = await session.step({"type": "click", "name": by_text(obs, "Shadow deals").name})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url == shops.url + "/product"
    assert shops.counts.trap_hits == []  # the cross-origin frame was never let through


async def test_cross_origin_frame_and_closed_root_are_reported(shops: FaultShops, pool: BrowserPool) -> None:
    session = await pool.new_session("reported")
    obs = await session.reset(shops.url + "/frames")
    assert set(obs.unreadable) == {
        UnreadablePart(kind="cross_origin_frame", where=f"{shops.trap} Cross"),
        UnreadablePart(kind="closed_shadow_root", where="div#closed-host"),
    }
    assert "[cross-origin frame: its content cannot be read or used]" in obs.simplified_html
    assert f'src="{shops.trap}"' in obs.simplified_html
    assert "[closed shadow root div#closed-host: its content cannot be read or used]" in obs.simplified_html
    assert not any("Closed deals" in el.text for el in obs.elements)  # closed stays closed


async def test_stamps_in_shadow_roots_follow_the_page(shops: FaultShops, pool: BrowserPool) -> None:
    session = await pool.new_session("stale")
    obs = await session.reset(shops.url + "/frames")
    shadow = by_text(obs, "Shadow deals")
    await session.page.evaluate("document.getElementById('open-host').style.display = 'none'")
    again = await session.observe()
    assert shadow.name not in again.names
    result = await session.step({"type": "click", "name": shadow.name})  # a name from the old page
    assert result.error is not None and result.error.code == "unknown_name", result.error


async def test_web_components_slots_nested_roots_and_srcdoc_frames(shops: FaultShops, pool: BrowserPool) -> None:
    session = await pool.new_session("components")
    obs = await session.reset(shops.url + "/components")
    assert_names_unique(obs)
    assert obs.unreadable == ()
    link = by_text(obs, "Trail shoe")  # slotted once, not once per tree
    size = next(el for el in obs.elements if el.kind == "select")
    assert size.text == "Shoe size" and size.options == ("9", "10")  # aria-labelledby inside the root
    assert obs.simplified_html.count("Trail shoe") == 1

    result = await session.step({"type": "click", "name": next(
        el.name for el in obs.elements if el.tag == "option" and el.text == "10")})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.title == "10"

    result = await session.step({"type": "click", "name": by_text(obs, "Promo help").name})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url == shops.url + "/help/checkout"

    obs = await session.reset(shops.url + "/components")
    result = await session.step({"type": "click", "name": link.name})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url == shops.url + "/product"
