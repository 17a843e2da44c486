"""`make bench`: benchmarks against the real broker and database, each beside its bare floor
measured in the same run (docs/design.md §5)."""
