"""A Griffe extension for the API pages: the docstrings' doctest examples (lines from `>>> ` to
the next blank line) are shown as Python console code blocks instead of being read as Markdown
(where `>` starts a quotation)."""

import griffe


def fence(text):
    lines, out, inside = text.split("\n"), [], False
    for line in lines:
        if not inside and line.lstrip().startswith(">>> "):
            indent = line[: len(line) - len(line.lstrip())]
            out += ["", indent + "```pycon"]
            inside = True
        elif inside and not line.strip():
            out.append(indent + "```")
            inside = False
        out.append(line)
    if inside:
        out.append(indent + "```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence(obj.docstring.value)
