"""Kaggle's limits as Kaggle reports them, for the local backend's kernels (which the emulator runs too)."""

# A session that runs past its limit (session_timeout_s, under Kaggle's 12 h maximum) ends CANCEL_ACKNOWLEDGED with
# no failureMessage and no output files, its log ending with papermill's nbclient error: one public experiment log
# (2026-07-19, a push with --timeout 43200: "CellTimeoutError after 43200 seconds"; kaggle-findings-2026-12 #1).
# Unconfirmed: whether Kaggle's limit bounds the session or each cell (papermill's execution timeout is per cell;
# that log's notebook spent the time in one cell). The local runner bounds the session, the stricter reading.
TIMED_OUT = "timed_out"  # the state.json key the runner sets for such a session (code-competition reruns read it)


def timeout_line(seconds: int) -> str:
    """The log's last line for a session stopped at its limit: nbclient's own CellTimeoutError message."""
    return (f"nbclient.exceptions.CellTimeoutError: A cell timed out while it was being executed, "
            f"after {seconds} seconds.")
