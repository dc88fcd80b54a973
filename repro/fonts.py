"""Fonts for matplotlib figures that carry Chinese text (the report's overview figure).

Matplotlib draws each glyph with the first family of ``font.sans-serif`` that has it, so a CJK family
first and DejaVu Sans last renders Chinese and Latin text alike. A CJK font installed after
matplotlib built its font cache (``~/.cache/matplotlib``) is not in that cache; ``use_cjk`` registers
it from the system font folders. Without any CJK font, Chinese glyphs are drawn as boxes and the
figure is otherwise unchanged (on Debian: ``apt-get install fonts-noto-cjk``).

Kept apart from ``repro.plots``: the experiments import that module, so editing it would change the
code hash of every run.
"""
from __future__ import annotations

import re
from pathlib import Path

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei")
LATIN_FALLBACK = "DejaVu Sans"
_FILES = re.compile(r"(NotoSansCJK|NotoSans.*CJK|wqy-zenhei|WenQuanYi)", re.I)


def cjk_families() -> list[str]:
    """The CJK families matplotlib can use here, in order of preference (registering any installed
    after matplotlib's font cache was built)."""
    from matplotlib import font_manager as fm

    def present() -> list[str]:
        names = {f.name for f in fm.fontManager.ttflist}
        return [n for n in CJK_FAMILIES if n in names]

    found = present()
    if not found:
        for path in fm.findSystemFonts():
            if _FILES.search(Path(path).name):
                try:
                    fm.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = present()
    return found


def use_cjk() -> str | None:
    """Put the available CJK families first in matplotlib's sans-serif list; the first one, or None."""
    import matplotlib

    found = cjk_families()
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["font.sans-serif"] = [*found, LATIN_FALLBACK]
    return found[0] if found else None
