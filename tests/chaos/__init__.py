"""`make chaos`: seeded faults against a stack of their own, under traffic through the real APIs
(harness.py); a short seeded subset runs in `make test` (test_chaos_quick.py)."""
