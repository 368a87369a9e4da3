"""The table engine: `Grid`, which prints what Rich prints for the same table without Rich's
cell-by-cell layout where it can, the header grid, and number formats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from keras_cut.core.shown import visible

if TYPE_CHECKING:  # for annotations only
    from keras_cut.model.costs import Cost




def _shown_cell(cell: Any) -> Any:
    """A cell as shown: control characters visible (a cell's own line breaks, between calls
    of a shared layer, stay: names are made one line with `shown_name` where they are put in)."""
    if isinstance(cell, Text):
        shown = visible(cell.plain)
        return cell if shown == cell.plain else Text(shown, style=cell.style)
    return visible(str(cell)) if isinstance(cell, str) else cell


class Grid:
    """A table whose name columns are never cut or wrapped: on a terminal too narrow for them,
    each row is printed as a block (the name, then `header: value` lines) instead."""

    def __init__(self, headers: list[str], whole: tuple[int, ...] = (0,),
                 right: tuple[int, ...] = (), title: str | None = None):
        self.headers, self.whole, self.right, self.title = headers, whole, right, title
        self.rows: list[list[Any]] = []

    def add_row(self, *cells: Any) -> None:
        """Cells as shown (`visible`) before any width is measured, so columns line up."""
        self.rows.append([_shown_cell(cell) for cell in cells])

    def table(self) -> Any:
        from rich.table import Table  # the fast path (`fast_text`) does without it

        table = Table(header_style="bold", title=self.title, title_justify="left")
        for i, header in enumerate(self.headers):
            table.add_column(Text(header), justify="right" if i in self.right else "left",
                             no_wrap=i in self.whole, overflow="fold")
        for row in self.rows:  # plain strings are text, never Rich markup ("[red]x" is a name)
            table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in row))
        return table

    def needed_width(self) -> int:
        """The narrowest table that keeps name columns whole and breaks no other word."""
        total = 1  # the left border
        for i, header in enumerate(self.headers):
            cells = [str(row[i]) for row in self.rows] + [header]
            lines = [line for cell in cells for line in cell.splitlines()]
            if i in self.whole:
                width = max((len(line) for line in lines), default=0)
            else:
                width = max((len(w) for line in lines for w in line.split()), default=0)
            total += width + 3  # padding both sides and a border
        return total

    def natural_width(self) -> int:
        """The table's width with every cell on its own lines, unwrapped."""
        return 1 + sum(w + 3 for w in self._column_widths())

    def _column_widths(self) -> list[int]:
        from rich.cells import cell_len

        return [max(cell_len(line) for cell in [header, *(row[i] for row in self.rows)]
                    for line in (str(cell).split("\n") or [""]))
                for i, header in enumerate(self.headers)]

    def fast_text(self) -> Text:
        """What Rich prints for `table()` when nothing needs wrapping, assembled directly:
        Rich measures and renders every cell of a 200-row table, which costs more than
        reading the model (`inspect` of ResNet50). `tests/present/test_render.py` holds it to Rich's
        own output."""
        widths = self._column_widths()
        out = Text(end="")
        if self.title:
            out.append(self.title.ljust(1 + sum(w + 3 for w in widths)) + "\n")
        out.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓\n")
        self._fast_row(out, [Text(h, style="bold") for h in self.headers], widths, "┃")
        out.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩\n")
        for row in self.rows:
            self._fast_row(out, [c if isinstance(c, Text) else Text(str(c)) for c in row],
                           widths, "│")
        out.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘\n")
        return out

    def _fast_row(self, out: Text, cells: list[Text], widths: list[int], bar: str) -> None:
        lines = [cell.split("\n", allow_blank=True) for cell in cells]
        height = max(len(cell_lines) for cell_lines in lines)
        for n in range(height):
            out.append(bar)
            for i, cell_lines in enumerate(lines):
                line = cell_lines[n] if n < len(cell_lines) else Text("")
                gap = " " * (widths[i] - line.cell_len)
                right = i in self.right
                out.append(" " + (gap if right else ""))
                out.append_text(line)
                out.append(("" if right else gap) + " " + bar)
            out.append("\n")

    def fast_ok(self) -> bool:
        """Cells the fast table renders as Rich does: Rich trims and re-justifies lines that
        start or end with whitespace, and expands tabs; those tables go through Rich."""
        cells = [str(c) for c in (*self.headers, *(cell for row in self.rows for cell in row))]
        return bool(self.rows) and not any(cell.endswith("\n") for cell in cells) and all(
            line == line.strip() and line.isprintable()
            for cell in cells for line in cell.split("\n"))

    def print(self, console: Console) -> None:
        width = self.natural_width() if self.fast_ok() else console.width + 1
        if width <= console.width and len(self.title or "") <= width:
            console.print(self.fast_text(), soft_wrap=True, end="")
            return
        if self.needed_width() <= console.width:
            console.print(self.table())
            return
        if self.title:
            console.print(Text(self.title, style="bold"))
        first = self.whole[0] if self.whole else 0
        for row in self.rows:
            heading = row[first]
            console.print(heading if isinstance(heading, Text) else
                          Text(str(heading), style="bold"), soft_wrap=True)
            for i, cell in enumerate(row):
                if i == first or not str(cell).strip():
                    continue
                label = self.headers[i] or "Role"
                console.print(Text.assemble(f"  {label}: ", cell if isinstance(cell, Text)
                                            else Text(str(cell))), soft_wrap=True)


def format_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{count} B"


def format_count(count: int) -> str:
    """3,857,973,248 -> "3.86 G": MACs at a glance (exact figures are in --json)."""
    value = float(count)
    for unit in ("", "K", "M", "G", "T"):
        if value < 1000 or unit == "T":
            return f"{count:,}" if not unit else f"{value:.2f} {unit}"
        value /= 1000
    return f"{count:,}"


def header_grid(rows: list[tuple[str, str]], console: Console) -> None:
    """Label/value lines; one line each on a narrow terminal, never wrapped inside a name."""
    widest = max(len(line) for _, value in rows for line in value.splitlines() or [""])
    fast = _header_text(rows)
    if fast is not None and fast[1] <= console.width:
        console.print(fast[0], soft_wrap=True, end="")
        return
    if 15 + widest <= console.width:
        from rich.table import Table

        header = Table.grid(padding=(0, 2))
        header.add_column(style="bold")
        header.add_column(overflow="fold")
        for label, value in rows:
            header.add_row(Text(label), Text(value))
        console.print(header)
    else:
        for label, value in rows:
            for i, line in enumerate(value.splitlines() or [""]):
                console.print(Text.assemble((f"{label}: " if i == 0 else "  ", "bold"), line),
                              soft_wrap=True)


def _header_text(rows: list[tuple[str, str]]) -> tuple[Text, int] | None:
    """What Rich prints for the header grid (labels in bold, two spaces, values) without its
    trailing padding, assembled directly, and its width; None where Rich would lay it out
    differently (held to Rich's output, line ends aside, by tests/present/test_render.py)."""
    from rich.cells import cell_len

    lines = [(label if i == 0 else "", line) for label, value in rows
             for i, line in enumerate(value.split("\n"))]
    plain = all(text == text.strip() and text.isprintable()
                for label, line in lines for text in (label, line))
    if not lines or not plain or any(value.endswith("\n") for _, value in rows):
        return None
    left = max(cell_len(label) for label, _ in rows)
    right = max(cell_len(line) for _, line in lines)
    if not left or not right:
        return None
    out = Text(end="")
    for label, line in lines:
        out.append(label + " " * (left - cell_len(label)), style="bold")
        out.append("  " + line + "\n")  # Rich pads the last column; a line ends at its text
    return out, left + 2 + right


def cost_lines(cost: Cost) -> str:
    """The footer's per-sample totals, saying "at least" where a part is unknown."""
    macs = format_count(cost.macs)
    if macs != f"{cost.macs:,}":
        macs += f" ({cost.macs:,})"
    if not cost.macs_known:
        macs = f"at least {macs}; unknown for {len(cost.unknown)} layer call(s): " + \
            ", ".join(cost.unknown[:3]) + (", ..." if len(cost.unknown) > 3 else "")
    memory = format_bytes(cost.activation_bytes)
    if not cost.activation_known:
        memory = "at least " + memory
    largest = f"; largest: {cost.largest[0]} ({format_bytes(cost.largest[1])})" \
        if cost.largest else ""
    return f"MACs per sample: {macs}\nActivation memory per sample: {memory}{largest}"


def one_shape(shapes: list[Any]) -> Any:
    return shapes[0] if len(shapes) == 1 else shapes
