"""Graph passes, in pipeline order: plan_memory (prune, calibrate and quantize join later)."""
