"""Kaggle's limits in Kaggle's words, for the local backend's kernels (which the emulator runs too)."""

# A session that runs past its limit (session_timeout_s, under Kaggle's 12 h maximum) is stopped with this
# failureMessage (as scripts that read kernels_status match it, e.g. xhluca/bm25-benchmarks
# analysis/download_comparisons.py); that it then reads ERROR is the toolkit's assumption.
SESSION_TIMEOUT = "Your notebook was stopped because it exceeded the max allowed execution duration."
