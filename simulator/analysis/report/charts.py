"""SVG charts for the HTML report, inlined as base64 ``<img>``: no external files, and text
inside a chart cannot run as markup."""

from __future__ import annotations

import base64
import html
import io

from shop_r1.simulator.analysis.report.summary import RunSummary


def svg_img(draw, alt: str, size: tuple[float, float] = (6.0, 3.0)) -> str:
    """Render a matplotlib drawing to an inline base64 SVG ``<img>``.

    Uses a bare ``Figure`` (no pyplot global state) so it is safe off the main thread.
    """
    # matplotlib is optional (the ml extra) and slow to import: only loaded to draw.
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": "shop-r1", "svg.fonttype": "path"}):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasSVG(fig)
        draw(fig.add_subplot())
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def run_charts(summary: RunSummary) -> list[str]:
    from matplotlib.ticker import MaxNLocator  # optional dependency, see svg_img

    def funnel(ax) -> None:
        labels = [f.label for f in summary.funnel][::-1]
        values = [f.sessions for f in summary.funnel][::-1]
        bars = ax.barh(labels, values, color="#4c78a8")
        ax.bar_label(bars, padding=3)
        ax.set_xlabel("sessions")
        ax.set_title("Funnel")
        ax.set_xlim(0, max([summary.sessions, 1]) * 1.15)

    def outcomes(ax) -> None:
        items = [(o, c) for o, c in summary.outcomes.items() if c] or [("none", 0)]
        bars = ax.bar([o for o, _ in items], [c for _, c in items], color="#f58518")
        ax.bar_label(bars, padding=2)
        ax.set_ylabel("sessions")
        ax.set_title("Outcomes")
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_ylim(0, max(c for _, c in items) * 1.2 + 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))

    def abandonment(ax) -> None:
        steps = list(summary.abandonment_steps)
        ax.bar(steps, [summary.abandonment_steps[s] for s in steps], color="#e45756", width=0.8)
        ax.set_xlabel("last step index of non-purchasing sessions")
        ax.set_ylabel("sessions")
        ax.set_title("Abandonment")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))

    return [
        svg_img(funnel, "funnel: sessions reaching each stage"),
        svg_img(outcomes, "session outcomes"),
        svg_img(abandonment, "abandonment step histogram"),
    ]
