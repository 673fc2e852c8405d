"""What happens to runs, between the command line and the backends: rendering them into kernel folders (plan),
recording and pushing them once, as slots allow (schedule), reading their states (refresh, pack_results),
waiting (wait), bringing outputs home (outputs), packing several into one kernel (pack), stopping (stop),
estimating what they cost (estimate, quota, local_duration), their results (results), finding them by name
(lookup), and rebuilding a lost registry from the backend (rebuild)."""
