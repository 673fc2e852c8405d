"""What runs cost in time and quota: minutes per epoch from finished runs, the seed's figures (priors) or timm's
benchmark tables calibrated on them (benchmarks, cost_model), a run's estimate (estimate) and this machine's own
(local_duration), the sessions a sweep takes (sessions) and the week each fits in (quota)."""
