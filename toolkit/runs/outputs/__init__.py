"""A finished run's outputs: brought home from the backend, staged and checked (fetch), read once per command as
one typed value (loaded), and the results table made from them (results)."""
