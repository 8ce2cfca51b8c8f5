"""Named sections of a generated Markdown file, kept between HTML comment
markers, so that one script can rewrite its own section and leave the rest
of the file (another script's output) as it was."""

from __future__ import annotations

import re
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def _pattern(name: str) -> re.Pattern[str]:
    begin, end = markers(name)
    return re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)


def get_section(text: str, name: str) -> str | None:
    """The section ``name`` of ``text``, markers included, or None."""
    match = _pattern(name).search(text)
    return None if match is None else match.group(0)


def section_body(text: str, name: str) -> str | None:
    """What section ``name`` of ``text`` holds between its markers, or None."""
    section = get_section(text, name)
    if section is None:
        return None
    begin, end = markers(name)
    return section[len(begin) : section.rindex(end)]


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` holding ``body`` (replaced where it
    is, appended at the end where it is absent)."""
    begin, end = markers(name)
    block = f"{begin}\n{body.strip()}\n{end}\n"
    pattern = _pattern(name)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip("\n") + "\n\n" + block if text.strip() else block


def keep_sections(old: str, new: str, names: tuple[str, ...]) -> str:
    """``new`` with each named section of ``old`` that ``new`` lacks."""
    for name in names:
        body = section_body(old, name)
        if body is not None and get_section(new, name) is None:
            new = replace_section(new, name, body)
    return new


def write_section(path: Path, name: str, body: str) -> None:
    """Writes section ``name`` of the file at ``path`` (created if absent)."""
    old = path.read_text() if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(old, name, body))
