"""The performance suite: python -m benchmarks (see README, "Performance")."""
