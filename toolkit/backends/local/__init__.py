"""The local backend: the same notebooks Kaggle would run, on this machine, in Kaggle's directory layout, package
set, read-only mounts and limits, so a kernel that fails on Kaggle fails here first. The Backend protocol over
the others (backend); where things are (paths), the queue and its state files (queue), inputs and sandboxes
(inputs, sandbox), the notebook runner (runner), code-competition reruns (rerun), the leaderboard
(leaderboard), Kaggle's limits in its words (limits)."""
