"""The report's overview figure: every judged part of every claim against its line, as a forest plot
(matplotlib, coloured by the claim's verdict). ``overview_items`` is the data, ``overview_png`` the
picture; the page's caption is in the report's template."""
from __future__ import annotations

import io
import math

from repro import record, verdict

VERDICT_COLOURS = {verdict.REPRODUCED: "#1e8a3c", verdict.PARTIAL: "#c77c00", verdict.CONTRADICTED: "#c62828",
                   verdict.INCONCLUSIVE: "#7e57c2", verdict.NOT_CHECKABLE: "#607d8b", verdict.ERROR: "#424242"}
OFFSCALE = 1000.0    # the axis ends at ±1000 line units; a part beyond sits at the edge with its value
LINTHRESH = 0.01     # the axis is linear within ±1% of the line's scale and logarithmic beyond


def _num(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_exact(rec: dict, spec: dict, m: dict) -> bool:
    run = (rec.get("runs") or {}).get(spec.get("run") or "")
    if run and "deterministic" in run:
        return bool(run["deterministic"])
    adv = m.get("advantage") or {}
    return not m.get("decision_interval") and not adv.get("decision_interval") and (m.get("n") or 1) <= 1


def _scaled_part(rule: dict, m: dict, metrics: dict) -> tuple[float | None, list | None, list | None, str]:
    """(x, 95% CI, deciding interval, scale) of one judged part on the overview's axis: the signed distance
    past its line, positive on the claim's side, in units of the line's own value (a paired rule: the
    per-seed advantage in units of the other arm's mean). x None: not on a numeric scale."""
    kind = verdict.rule_kind(rule)
    t = rule[kind]
    vals = m.get("values") or []
    if kind in ("in_seeds", "paired_within"):   # a share of seeds, a band around another metric: no line scale
        return None, None, None, ""
    if kind == "paired":
        adv = m.get("advantage") or {}
        if not _num(adv.get("mean")):
            return None, None, None, ""
        other = (metrics.get(t["than"]) or {}).get("mean")
        own = m.get("mean")
        s = abs(other) if _num(other) and other else abs(own) if _num(own) and own else 1.0
        f = (lambda v: v / s)
        iv = (lambda k: [f(v) for v in adv[k]] if adv.get(k) else None)
        return f(adv["mean"]), iv("ci95"), iv("decision_interval"), f"{t['than']} {record.fmt(other)}"
    if kind == "equal":
        if m.get("status") == verdict.PASS:
            return 0.0, None, None, ""
        if _num(t) and vals and all(_num(v) for v in vals):
            s = abs(t) or 1.0
            return -max(abs(v - t) for v in vals) / s, None, None, record.fmt(t)
        return None, None, None, ""
    mean = m.get("mean") if _num(m.get("mean")) else (vals[0] if vals and _num(vals[0]) else None)
    if mean is None:
        return None, None, None, ""
    ci, di = m.get("ci95"), m.get("decision_interval")
    if kind in ("at_least", "at_most"):
        spread = max([abs(mean)] + [abs(v - mean) for v in (ci or [])])
        s = abs(t) or spread or 1.0
        sign = 1.0 if kind == "at_least" else -1.0
        f = (lambda v: sign * (v - t) / s)
        iv = (lambda x: sorted([f(x[0]), f(x[1])]) if x else None)
        return f(mean), iv(ci), iv(di), record.fmt(t) if t else f"|{record.fmt(mean)}|"
    lo_b, hi_b = (t - rule["tol"], t + rule["tol"]) if kind == "approx" else tuple(t)
    c, tol = (lo_b + hi_b) / 2, (hi_b - lo_b) / 2
    s = abs(c) or tol or 1.0

    def iv(x):   # the margin of every value in [lo, hi]: its least and its greatest
        if not x:
            return None
        lo, hi = x
        far = max(abs(lo - c), abs(hi - c))
        near = 0.0 if lo <= c <= hi else min(abs(lo - c), abs(hi - c))
        return [(tol - far) / s, (tol - near) / s]
    return (tol - abs(mean - c)) / s, iv(ci), iv(di), record.fmt(c)


def overview_items(rows: list[dict], titles: dict[str, str] | None = None) -> list[dict]:
    """The overview figure's rows, top to bottom: a heading per chapter section, then each judged part
    of each claim (a claim's exact parts that equal the chapter's values share one row).

    Part rows: claim, metric (label), verdict (the claim's), status (the part's), exact, x, ci, di
    (scaled as ``_scaled_part``; ci/di None for an exact part), offscale (-1/+1 when x lies beyond
    ±OFFSCALE or has no numeric distance, drawn at the axis' edge), value (the text shown there)."""
    titles = titles or {}
    items: list[dict] = []
    chapter = None
    for r in rows:
        e, rec = r["entry"], r["record"]
        specs, metrics = e.get("metric_specs") or {}, e.get("metrics") or {}
        parts = []
        same = []
        for name, m in metrics.items():
            spec = specs.get(name) or {}
            rule = spec.get("rule")
            if not rule or m.get("status") in (None, verdict.INFO):
                continue
            kind = verdict.rule_kind(rule)
            if kind == "equal" and m["status"] == verdict.PASS and not spec.get("precondition"):
                same.append(name)
                continue
            x, ci, di, scale = _scaled_part(rule, m, metrics)
            exact = _is_exact(rec, spec, m)
            item = {"claim": e["id"], "metric": name + (" (precondition)" if spec.get("precondition") else ""),
                    "verdict": e["verdict"], "status": m["status"], "exact": exact, "x": x,
                    "ci": None if exact else ci, "di": None if exact else di, "offscale": 0, "value": "",
                    "kind": kind, "scale": scale}
            if x is None:
                item.update(offscale=-1 if m["status"] == verdict.FAIL else 1, value="≠" if kind == "equal" else "?")
            elif abs(x) > OFFSCALE:
                item.update(offscale=1 if x > 0 else -1, value=_times(x))
            parts.append(item)
        if same:
            label = same[0] if len(same) == 1 else f"{len(same)} exact values"
            parts.insert(0, {"claim": e["id"], "metric": label, "verdict": e["verdict"], "status": verdict.PASS,
                             "exact": True, "x": 0.0, "ci": None, "di": None, "offscale": 0, "value": "",
                             "kind": "equal", "scale": ""})
        if not parts:
            continue
        if r["chapter"] != chapter:
            chapter = r["chapter"]
            items.append({"head": titles.get(chapter, chapter)})
        items.extend(parts)
    return items


_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _times(x: float) -> str:
    """-240000 -> '$-2.4\\times10^{5}$' (how far past the line, in line units; mathtext, which every
    matplotlib draws, where a superscript digit may be missing from the CJK font)."""
    mant, _, exp = f"{x:.2g}".partition("e")
    return f"${mant}\\times10^{{{int(exp)}}}$" if exp else f"${mant}$"


def _tick(t: float) -> str:
    if t == 0:
        return "0"
    sign = "+" if t > 0 else "−"
    return f"{sign}{abs(t) * 100:g}%" if abs(t) <= 1 else f"{sign}{abs(t):g}×"


def overview_png(items: list[dict]) -> bytes:
    """The forest plot of ``overview_items`` as PNG bytes (matplotlib, CJK fonts where installed)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.transforms import blended_transform_factory

    from repro import fonts, plots

    fonts.use_cjk()
    plt = plots.plt
    n = len(items)
    labels = [f"{it['claim']}  {it['metric']}" if "head" not in it else "" for it in items]
    height = 1.6 + 0.17 * n
    fig, ax = plt.subplots(figsize=(10, height), dpi=100)
    left = min(0.45, (0.064 * max(len(s) for s in labels) + 0.25) / 10)
    fig.subplots_adjust(left=left, right=0.97, top=1 - 0.35 / height, bottom=1.2 / height)
    xs = [v for it in items if "head" not in it and not it["offscale"]
          for v in [it["x"], *(it["ci"] or []), *(it["di"] or [])]]
    any_left = any(it.get("offscale", 0) < 0 for it in items)
    any_right = any(it.get("offscale", 0) > 0 for it in items)
    lo = -OFFSCALE if any_left else max(-OFFSCALE, min(xs + [-0.1]))
    hi = OFFSCALE if any_right else min(OFFSCALE, max(xs + [0.1]))
    xl, xr = lo * 4, hi * 4
    ax.set_xscale("symlog", linthresh=LINTHRESH, linscale=0.5)
    ax.set_xlim(xl, xr)
    ax.set_ylim(-0.7, n - 0.3)
    ax.axvspan(0, xr, color="#1e8a3c", alpha=0.05, lw=0)
    ax.axvspan(xl, 0, color="#c62828", alpha=0.05, lw=0)
    ax.axvline(0, color="#333", lw=1)
    clip = (lambda v: max(-OFFSCALE, min(OFFSCALE, v)))
    across = blended_transform_factory(ax.transAxes, ax.transData)
    for i, it in enumerate(items):
        y = n - 1 - i
        if "head" in it:
            ax.axhspan(y - 0.5, y + 0.5, color="#e9e9e9", lw=0, zorder=0)
            ax.text(0.004, y, it["head"], transform=across, ha="left", va="center", fontsize=9, fontweight="bold")
            continue
        col = VERDICT_COLOURS.get(it["verdict"], "#000")
        if it["di"]:
            ax.plot([clip(v) for v in it["di"]], [y, y], color=col, lw=1, zorder=2)
        if it["ci"]:
            ax.plot([clip(v) for v in it["ci"]], [y, y], color=col, lw=3.5, alpha=0.8, solid_capstyle="butt", zorder=3)
        x = it["offscale"] * OFFSCALE if it["offscale"] else it["x"]
        marker = {verdict.PASS: "o", verdict.FAIL: "X"}.get(it["status"], "o")
        if it["offscale"]:
            marker = "<" if it["offscale"] < 0 else ">"
        face = "white" if it["status"] == verdict.UNDECIDED else col
        ax.plot([x], [y], marker=marker, ms=6 if marker != "X" else 7, mfc=face, mec=col, mew=1.4, ls="", zorder=4)
        if it["value"]:   # beside the marker, towards 0
            ax.text(x / 1.8, y, it["value"], fontsize=7, va="center", ha="left" if x < 0 else "right", color=col)
    ax.set_yticks([n - 1 - i for i in range(n)], labels, fontsize=8)
    ax.tick_params(axis="y", length=0)
    ticks = [0.0] + [s * 10.0 ** k for k in range(-2, 4) for s in (-1, 1)]
    ticks = sorted(t for t in ticks if xl <= t <= xr)
    ax.set_xticks(ticks, [_tick(t) for t in ticks], fontsize=8)
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.grid(axis="x", color="#d0d0d0", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel("distance past the line, in units of the line's value (paired: advantage over the other arm, "
                  "in units of its mean)", fontsize=8)
    over = blended_transform_factory(ax.transData, ax.transAxes)
    ax.text(0, 1.003, "← against the claim  ", transform=over, ha="right", va="bottom", fontsize=9, color="#c62828")
    ax.text(0, 1.003, "  for the claim →", transform=over, ha="left", va="bottom", fontsize=9, color="#1e8a3c")
    present = [v for v in verdict.VERDICTS if any(it.get("verdict") == v for it in items)]
    handles = [Patch(color=VERDICT_COLOURS[v], label=v) for v in present] + [
        Line2D([], [], marker="o", ls="", color="#555", label="part passes"),
        Line2D([], [], marker="X", ls="", color="#555", ms=7, label="part fails"),
        Line2D([], [], marker="o", ls="", mfc="white", color="#555", label="part undecided"),
        Line2D([], [], color="#555", lw=3.5, alpha=0.8, label="95% CI over seeds"),
        Line2D([], [], color="#555", lw=1, label="the interval that decided"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plots.plt.close(fig)
    return buf.getvalue()


