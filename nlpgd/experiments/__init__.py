"""Experiments: each a plain function from a config to a run folder."""
