"""Compression stages: structured pruning, unstructured sparsity, quantisation."""
