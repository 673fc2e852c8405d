"""One flow per command (push: train, sweep, retry, aside; pull: outputs, data; ensemble; status: status, stop;
logs): each runs its command's steps top to bottom and reports what happens as typed events (events.py), which
the console scripts show and tests collect. Flows take an open Project and plain values, never print, and return
what the command ends with."""
