"""The command line: parse options → build the parts → run → map the result to an exit code."""
