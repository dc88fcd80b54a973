"""Is a generated page well-formed, self-contained HTML? (Every tag closed in order, no id twice, no
link to a missing anchor, nothing fetched from the network.)"""
from __future__ import annotations

import re
from html.parser import HTMLParser


class HTMLProblem(ValueError):
    pass


class _Checker(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int]] = []
        self.problems: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            v = a.get(key) or ""
            if re.match(r"(https?:)?//", v):
                self.problems.append(f"line {self.getpos()[0]}: <{tag} {key}={v[:40]}> needs the network")
        if a.get("id"):
            if a["id"] in self.ids:
                self.problems.append(f"duplicate id {a['id']!r}")
            self.ids.add(a["id"])
        if tag not in self.VOID:
            self.stack.append((tag, self.getpos()[0]))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            open_tag = self.stack[-1] if self.stack else None
            self.problems.append(f"line {self.getpos()[0]}: </{tag}> closes {open_tag}")
            return
        self.stack.pop()


def validate_html(text: str) -> None:
    """Raise HTMLProblem unless the page is well-formed, self-contained HTML with a doctype."""
    if not text.lstrip().lower().startswith("<!doctype html>"):
        raise HTMLProblem("no <!DOCTYPE html>")
    checker = _Checker()
    checker.feed(text)
    checker.close()
    problems = checker.problems + [f"<{t}> opened on line {n} is never closed" for t, n in checker.stack]
    for href in re.findall(r'href="#([^"]+)"', text):
        if href not in checker.ids:
            problems.append(f"link to #{href} has no target")
    if problems:
        raise HTMLProblem("; ".join(problems[:5]))
