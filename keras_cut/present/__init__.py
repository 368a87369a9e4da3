"""Presentation: Rich tables and JSON for each command, pictures (DOT, Mermaid, SVG/PNG/PDF)
and the interactive HTML page."""
