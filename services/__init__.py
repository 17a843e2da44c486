"""Wenming Cloud services. `common` is the shared kit; every other package is one service."""
