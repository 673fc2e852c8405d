"""How runs stand and waiting for them: each poll's states from the backend (refresh, a pack's per-run results:
pack_results), what a running run is doing from its log (progress), its log (logs), a session that ran past its
limit (timeouts, and a pack's members requeued alone: pack_timeouts), what a failure means for the user
(failures), and the wait that polls until they settle (wait)."""
