"""Proving a submodel computes what its parent computes: which parent tensor each endpoint
stands for, feeds, tolerances, weights, the first divergence, golden files."""
