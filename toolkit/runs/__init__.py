"""What happens to runs, between the flows and the backends: rendering them into kernel folders (plan),
recording and pushing them once, as slots allow (schedule), packing several into one kernel (pack), checking
them on a miniature first (check), stopping them (stop), setting them aside (aside), finding them by name
(lookup), rebuilding a lost registry from the backend (rebuild); and in subpackages, what they cost in time and
quota (costs), how they stand and waiting for them (watch), and their outputs (outputs)."""
