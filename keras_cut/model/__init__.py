"""The model as keras-cut sees it: the layer graph and its flat view, layer names (one type,
one parser), opening a file, safety findings, costs, the structure gate and the provenance
record of a cut."""
