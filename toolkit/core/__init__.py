"""What every other package shares and nothing of the toolkit's own below it: typed errors that carry a line a
user can act on (errors), the one reader of toolkit.toml, TOOLKIT_* variables and defaults (config), the status
vocabulary of kernel versions and submissions (status), the one polling loop (poll) and process checks (procs)."""
