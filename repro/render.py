"""Templates: the report's HTML and the Markdown pages come from Jinja2 templates in
``repro/templates/`` (package data, so an installed repro finds them too); this module holds the
environments and the filters they use. The chapter's LaTeX (``$...$``, ``$$...$$``) becomes MathML
(latex2mathml) in HTML and stays LaTeX in Markdown, which GitHub renders itself."""
from __future__ import annotations

import dataclasses
import functools
import re

import jinja2
from markupsafe import Markup

from repro import record, verdict

TEMPLATES = "templates"
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)


@dataclasses.dataclass(frozen=True)
class Segment:
    """A piece of text: plain, or a formula (``math``) with its MathML (None where it cannot be converted)."""
    text: str
    math: bool = False
    display: bool = False
    mathml: Markup | None = None


@functools.lru_cache(maxsize=4096)
def mathml(tex: str, display: bool = False) -> Markup | None:
    from latex2mathml.converter import convert

    try:
        return Markup(convert(tex.strip(), display="block" if display else "inline"))
    except Exception:   # noqa: BLE001 - latex2mathml raises many kinds; the template shows the source instead
        return None


def tex_segments(text: object) -> list[Segment]:
    """Text split into plain pieces and formulas ($...$ inline, $$...$$ display)."""
    s = "" if text is None else str(text)
    out, at = [], 0
    for m in _MATH.finditer(s):
        if m.start() > at:
            out.append(Segment(s[at:m.start()]))
        display = m.group(1) is not None
        tex = m.group(1) if display else m.group(2)
        out.append(Segment(tex, math=True, display=display, mathml=mathml(tex, display)))
        at = m.end()
    if at < len(s):
        out.append(Segment(s[at:]))
    return out


def vclass(v: str | None) -> str:
    """A CSS class per verdict: 'partially reproduced' -> 'v-partially-reproduced'."""
    return "v-" + re.sub(r"[^a-z]+", "-", (v or "none").lower()).strip("-")


def seconds(x: float | None) -> str:
    x = x or 0.0
    return f"{x:.1f} s" if x < 10 else f"{x:.0f} s"


def md_cell(x: object) -> str:
    """Text for a Markdown table cell: no line breaks, pipes escaped."""
    return str("" if x is None else x).replace("|", "\\|").replace("\n", " ")


def md_link_text(x: object) -> str:
    """Text inside a Markdown link's brackets."""
    return str(x).replace("[", "\\[").replace("]", "\\]")


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("repro", TEMPLATES), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(tex_segments=tex_segments, vclass=vclass, seconds=seconds, fmt=record.fmt, cell=md_cell,
                       link_text=md_link_text)
    env.globals.update(verdicts=verdict)
    return env


@functools.lru_cache(maxsize=2)
def environment(kind: str) -> jinja2.Environment:
    """'html' (autoescaped) or 'md'."""
    return _env(kind == "html")


def html(name: str, **context) -> str:
    return environment("html").get_template(name).render(**context)


def markdown(name: str, **context) -> str:
    return environment("md").get_template(name).render(**context)
