"""The run registry, `.toolkit/runs.sqlite`: its records (runs, submissions, push claims, allowed status moves),
its tables as numbered migrations (schema), the one owner of every change to it, each in one transaction
(store), and telling a damaged file from a busy one (damage)."""
