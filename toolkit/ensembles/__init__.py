"""Ensembles of finished runs: choosing the members (top K, weights, greedy forward selection on validation
predictions: members) and running the ensemble kernel over them, submitting its result once and waiting for
the score (submit)."""
