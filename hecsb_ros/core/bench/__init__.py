"""Benchmarks of the seed paper's section 4.2: rate-accuracy curves (Fig. 8) and latency (Table
2)."""
