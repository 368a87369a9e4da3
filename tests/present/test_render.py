"""The fast table (`Grid.fast_text`) prints exactly what Rich prints for the same table."""

from __future__ import annotations

import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from keras_cut.present.render import Grid
from tests.cli_helpers import examples

# names as Keras allows them: brackets, slashes, wide and combining characters, controls
CELL = st.lists(st.sampled_from(list("ab_/@[]x1 ,.-") + ["日", "ï", "\n", "😀", "e\u0301",
                                                         "\t", "\r"]),
                max_size=12).map("".join)


def printed(grid: Grid, fast: bool, color: str | None = None) -> str:
    """`Grid.print` (which takes the fast path where it can), or Rich's own table."""
    buf = io.StringIO()
    console = Console(file=buf, width=10_000, color_system=color, force_terminal=bool(color))
    if fast:
        grid.print(console)
    else:
        console.print(grid.table())
    return buf.getvalue()


def test_ordinary_tables_print_without_richs_layout(monkeypatch):
    """What the fast path is for: an ordinary table is printed as Rich would print it without
    running Rich's cell-by-cell layout; a table it cannot assemble (a trailing space, which
    Rich re-justifies) still prints, through Rich."""
    grid = Grid(["Layer (path)", "Params"], right=(1,))
    grid.add_row("conv1", "1,234")
    expected = printed(grid, fast=False)
    layouts = []
    real = Grid.table
    monkeypatch.setattr(Grid, "table", lambda self: layouts.append(1) or real(self))
    assert printed(grid, fast=True) == expected and layouts == []
    grid.add_row("name ", "1")
    odd = printed(grid, fast=True)
    assert layouts == [1]  # the odd table went through Rich
    assert odd == printed(grid, fast=False)


@settings(max_examples=examples(400), deadline=None, derandomize=True)  # as test_fuzz
@given(columns=st.integers(1, 5), data=st.data(),
       title=st.none() | st.text("Findings ", min_size=1), styled=st.booleans())
def test_fast_table_is_richs_table(columns, data, title, styled):
    headers = data.draw(st.lists(CELL.filter(lambda t: "\n" not in t), min_size=columns,
                                 max_size=columns))
    right = tuple(i for i in range(columns) if data.draw(st.booleans()))
    grid = Grid(headers, right=right, title=title)
    for row in data.draw(st.lists(st.lists(CELL, min_size=columns, max_size=columns),
                                  min_size=1, max_size=6)):
        grid.add_row(*[Text(c, style="yellow") if styled and i == 0 else c
                       for i, c in enumerate(row)])
    assert printed(grid, fast=True) == printed(grid, fast=False)
    # with colours the escape codes may sit differently, the visible text may not
    plain = re.compile(r"\x1b\[[0-9;]*m")
    assert plain.sub("", printed(grid, True, "truecolor")) == \
        plain.sub("", printed(grid, False, "truecolor"))


@settings(max_examples=examples(400), deadline=None, derandomize=True)  # as test_fuzz
@given(rows=st.lists(st.tuples(CELL.filter(lambda t: "\n" not in t), CELL), min_size=1,
                     max_size=6))
def test_fast_header_is_richs_grid(rows):
    from rich.table import Table

    from keras_cut.present.tables import header_grid as _header

    def rich_grid(console):
        header = Table.grid(padding=(0, 2))
        header.add_column(style="bold")
        header.add_column(overflow="fold")
        for label, value in rows:
            header.add_row(Text(label), Text(value))
        console.print(header)

    for color in (None, "truecolor"):
        outs = []
        for fn in (lambda c: _header(rows, c), rich_grid):
            buf = io.StringIO()
            fn(Console(file=buf, width=10_000, color_system=color, force_terminal=bool(color)))
            text = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue()) if color else buf.getvalue()
            outs.append("\n".join(line.rstrip(" ") for line in text.split("\n")))
        assert outs[0] == outs[1]


def test_a_reproducers_layer_names_are_text_not_markup():
    from rich.console import Console

    from keras_cut.export.repro import Repro
    from keras_cut.present.verify_view import render_repro

    console = Console(record=True, width=200)
    render_repro(Repro("out", "[red]conv[/red]", "Conv2D", ["[b]x"], ["[red]conv[/red]"],
                       "segment.keras", "part.onnx", "the artifact", True, 0.5), console)
    text = console.export_text()
    assert "[red]conv[/red] (Conv2D)" in text and "from [b]x" in text
