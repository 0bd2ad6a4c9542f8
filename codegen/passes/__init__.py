"""Graph passes, in pipeline order: prune (float weights), calibrate, quantize, encode (dense or
sparse weights per layer), plan_memory."""
