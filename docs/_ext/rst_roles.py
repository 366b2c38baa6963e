"""A Griffe extension: the package's reStructuredText docstrings, read as Markdown.

The package's docstrings are written for Sphinx. mkdocstrings renders them as
Markdown, where reStructuredText markup shows raw. Before rendering, this extension
rewrites, in every docstring of the loaded packages:

- the roles ``:class:`X```, ``:func:``, ``:meth:``, ``:attr:``, ``:data:``,
  ``:exc:``, ``:mod:``, ``:obj:`` and ``:const:`` into cross-references that
  mkdocs-autorefs resolves when the target is rendered on the site, and shows as
  plain code otherwise (optional references never fail a strict build). The target
  is resolved like Sphinx does: absolute, or relative to the documented object,
  its class and its module (including the module's imports). ``~`` shows only the
  last component; ``!`` never links; ``:role:`title <target>``` shows the title;
- ``.. code-block:: lang`` directives and ``::`` literal blocks into fenced code;
- definition lists (a term, then its indented definition) into the ``def_list``
  Markdown syntax.

It also shows a class whose base is private (``StartupFailedError(_PhaseFailedError)``)
with the bases of that private class instead: the page names only public classes.

Registered in ``mkdocs.yml`` under the Python handler's ``extensions``.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import TYPE_CHECKING, Any

import griffe

if TYPE_CHECKING:
    from collections.abc import Iterator

ROLE = re.compile(
    r"(?<![\w`]):(?:py:)?(?P<role>class|func|meth|attr|data|exc|mod|obj|const):"
    r"`(?P<content>[^`]+)`"
)
EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. (?:code-block|code|sourcecode)::\s*(?P<lang>\S*)\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)]|#\.)\s")
FIELD = re.compile(r"^\s*:[^:`\s][^:`]*:(?:\s|$)")
CALLABLE_ROLES = {"func", "meth"}


class RstToMarkdown(griffe.Extension):
    """Rewrite the reStructuredText markup of docstrings into Markdown."""

    def on_package(
        self,
        *,
        pkg: griffe.Module,
        loader: griffe.GriffeLoader,
        **kwargs: Any,  # noqa: ARG002 (Griffe passes more, for forward compatibility)
    ) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = rst_to_markdown(obj.docstring.value, obj, loader)
            if isinstance(obj, griffe.Class):
                obj.bases = _public_bases(obj, loader)


def _public_bases(cls: griffe.Class, loader: griffe.GriffeLoader) -> list[str | griffe.Expr]:
    """``cls``'s bases, each private one of the loaded packages replaced by its own bases."""
    bases: list[str | griffe.Expr] = []
    for base in cls.bases:
        path = base.canonical_path if isinstance(base, griffe.Expr) else base
        try:
            found = loader.modules_collection[path]
        except (KeyError, ValueError):
            found = None
        if isinstance(found, griffe.Class) and found.name.startswith("_"):
            bases.extend(_public_bases(found, loader))
        else:
            bases.append(base)
    return bases


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


def rst_to_markdown(
    text: str, obj: griffe.Object | None = None, loader: griffe.GriffeLoader | None = None
) -> str:
    """``text`` with its code blocks fenced, its roles linked and its definition lists."""
    lines = _fence_code(text.splitlines())
    lines = [
        line if in_code else ROLE.sub(lambda m: _role(m, obj, loader), line)
        for line, in_code in _mark_code(lines)
    ]
    return "\n".join(_definition_lists(lines))


# -- code blocks -------------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _take_block(lines: list[str], start: int, base: int) -> tuple[list[str], int]:
    """The indented block from ``start`` (blank lines before it skipped), and where it ends."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    block: list[str] = []
    while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > base):
        block.append(lines[index])
        index += 1
    while block and not block[-1].strip():
        block.pop()
    return block, index


def _fenced(lang: str, block: list[str], base: int) -> list[str]:
    prefix = " " * base
    body = textwrap.dedent("\n".join(block)).splitlines()
    return [
        "",
        f"{prefix}```{lang}",
        *(prefix + line if line else "" for line in body),
        prefix + "```",
        "",
    ]


def _fence_code(lines: list[str]) -> list[str]:
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = DIRECTIVE.match(line)
        literal = line.rstrip().endswith("::")
        if directive is None and not literal:
            out.append(line)
            index += 1
            continue
        base = _indent(line)
        block, end = _take_block(lines, index + 1, base)
        if not block:  # not a code block after all
            out.append(line)
            index += 1
            continue
        if directive is not None:
            lang = directive["lang"] or "python"
            # Directive options (":caption: ...") come first; they have no Markdown form.
            while block and FIELD.match(block[0]):
                block.pop(0)
        else:
            lang = "python"
            text = line.rstrip()[:-2]
            # "text::" becomes "text:", "text ::" becomes "text", a lone "::" goes.
            if text.strip():
                out.append(text.rstrip() if text.endswith(" ") else text + ":")
        out.extend(_fenced(lang, block, base))
        index = end
    return out


def _mark_code(lines: list[str]) -> Iterator[tuple[str, bool]]:
    """Each line, and whether it is part of a fenced code block."""
    fence: str | None = None
    for line in lines:
        match = FENCE.match(line)
        if fence is None and match:
            fence = match[1]
            yield line, True
        elif fence is not None:
            if match and match[1] == fence:
                fence = None
            yield line, True
        else:
            yield line, False


# -- roles -------------------------------------------------------------------------------


def _role(
    match: re.Match[str], obj: griffe.Object | None, loader: griffe.GriffeLoader | None
) -> str:
    role, content = match["role"], match["content"].strip()
    explicit = EXPLICIT_TITLE.match(content)
    title, target = (explicit["title"], explicit["target"]) if explicit else (None, content)
    link = not target.startswith("!")
    target = target.lstrip("!")
    short = target.startswith("~")
    target = target.lstrip("~").removesuffix("()")
    if title is None:
        title = target.rsplit(".", 1)[-1] if short else target
        if role in CALLABLE_ROLES:
            title += "()"
    code = f"`{title}`"
    path = _resolve(target, obj, loader) if link else None
    if path is None:
        return code
    # An optional reference: a link when the target is rendered somewhere on the site,
    # the code alone (with the full path as its tooltip) when it is not.
    return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


def _resolve(
    target: str, obj: griffe.Object | None, loader: griffe.GriffeLoader | None
) -> str | None:
    """The canonical path of ``target`` as Sphinx would find it from ``obj``, if known."""
    first, _, rest = target.partition(".")
    scope = obj if obj is None or obj.is_module or obj.is_class else obj.parent
    while scope is not None:
        if first in scope.members:
            found = _descend(scope.members[first], rest)
            if found is not None:
                return found
        scope = scope.parent
    if loader is not None:
        try:
            return _canonical(loader.modules_collection[target])
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            pass
    return None


def _descend(start: griffe.Object | griffe.Alias, rest: str) -> str | None:
    try:
        found = start[rest] if rest else start
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return _canonical(found)


def _canonical(found: griffe.Object | griffe.Alias) -> str | None:
    try:
        return found.final_target.path if found.is_alias else found.path  # type: ignore[union-attr]
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


# -- definition lists --------------------------------------------------------------------


def _definition_lists(lines: list[str]) -> list[str]:
    """``term`` + indented definition becomes ``term`` + ``:   definition`` (def_list)."""
    out: list[str] = []
    marked = list(_mark_code(lines))
    index = 0
    while index < len(marked):
        line, in_code = marked[index]
        following = marked[index + 1] if index + 1 < len(marked) else ("", True)
        previous = out[-1] if out else ""
        is_term = (
            not in_code
            and line.strip()
            and not following[1]
            and following[0].strip()
            and _indent(following[0]) > _indent(line)
            and not previous.strip()
            and not LIST_ITEM.match(line)
            and not FIELD.match(line)
            and not line.rstrip().endswith(":")
        )
        if not is_term:
            out.append(line)
            index += 1
            continue
        base = _indent(line)
        block, end = _take_block([text for text, _ in marked], index + 1, base)
        body = textwrap.dedent("\n".join(block)).splitlines()
        prefix = " " * base
        out.append(line)
        out.append(f"{prefix}:   {body[0]}")
        out.extend(f"{prefix}    {text}" if text else "" for text in body[1:])
        out.append("")
        index = end
    return out
