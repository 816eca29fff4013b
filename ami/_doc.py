"""The operations table of docs/ami.md, generated from the registry."""

from __future__ import annotations

from ami.ops import REQUIRED, default_registry


def operations_markdown() -> str:
    """A Markdown section per category: each operation, its ports and parameters."""
    lines: list[str] = []
    for category, specs in default_registry().by_category().items():
        lines += [f"### {category}", "", "| operation | kind | inputs | outputs | parameters |",
                  "|---|---|---|---|---|"]
        for s in specs:
            ins = ("names in the expression" if s.variadic else
                   ", ".join(f"{p.name}: {p.type}{'?' if p.optional else ''}" for p in s.inputs))
            outs = ", ".join(f"{p.name}: {p.type}" for p in s.outputs)
            params = "; ".join(
                f"`{p.name}` {p.kind}" + ("" if p.default is REQUIRED else f" = {p.default!r}")
                + (f" ({p.doc})" if p.doc else "") for p in s.params) or "none"
            lines.append(f"| `{s.name}` — {s.doc} | {s.kind} | {ins} | {outs} | {params} |")
        lines.append("")
    return "\n".join(lines)
