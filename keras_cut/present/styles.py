"""How each role of a drawing looks, in every picture format (DOT, Mermaid, the HTML page)."""

from __future__ import annotations

from keras_cut.draw.drawing import CROSSES, CUT_POINT, DROPPED, INPUT, KEPT, OUTPUT, PLAIN

# role -> (DOT attributes, Mermaid class style)
STYLES = {
    PLAIN: ('style="rounded,filled", fillcolor="#f5f7fa", color="#5b6b7f"',
            "fill:#f5f7fa,stroke:#5b6b7f"),
    INPUT: ('style="rounded,filled", fillcolor="#e3ecf7", color="#3465a4"',
            "fill:#e3ecf7,stroke:#3465a4"),
    KEPT: ('style="rounded,filled", fillcolor="#dff3e0", color="#2e7d32"',
           "fill:#dff3e0,stroke:#2e7d32"),
    DROPPED: ('style="rounded,dashed", color="#9e9e9e", fontcolor="#9e9e9e"',
              "fill:#ffffff,stroke:#9e9e9e,stroke-dasharray:4 3,color:#9e9e9e"),
    CUT_POINT: ('style="rounded,filled,bold", fillcolor="#ffe0b2", color="#e65100"',
                "fill:#ffe0b2,stroke:#e65100,stroke-width:3px"),
    CROSSES: ('style="rounded,filled,bold", fillcolor="#fce4ec", color="#c2185b"',
              "fill:#fce4ec,stroke:#c2185b,stroke-width:3px"),
    OUTPUT: ('style="rounded,filled,bold", fillcolor="#dff3e0", color="#1565c0", penwidth=3',
             "fill:#dff3e0,stroke:#1565c0,stroke-width:3px"),
}
LEGEND = [(KEPT, "kept"), (DROPPED, "dropped"), (CUT_POINT, "cut point (new input)"),
          (CROSSES, "crosses the cut (extra input)"), (OUTPUT, "output of the cut")]
