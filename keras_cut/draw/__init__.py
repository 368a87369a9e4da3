"""The `graph` operation: a drawing of a model or a cut as plain data (nodes, edges, clusters)."""
