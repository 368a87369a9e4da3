"""The Typer command line: parsing options, calling one library operation per command, turning
library errors into one `Error:` line and an exit code."""
