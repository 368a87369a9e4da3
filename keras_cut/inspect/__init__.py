"""The `inspect` operation: what a file holds, as a report."""
