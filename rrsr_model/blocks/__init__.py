"""The network's building blocks, one module each (see the package README map in the top-level README)."""
