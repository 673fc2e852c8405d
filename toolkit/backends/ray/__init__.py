"""The ray backend: the local backend's Kaggle-layout sandboxes, run as jobs on a Ray cluster (a workstation's
`ray start --head`, a cloud or KubeRay cluster) that queues them by the GPUs they ask for. The Backend protocol
(backend); the job server, its token and its nodes (cluster); a version as a job: what it asks for, its id and
entrypoint, what its end means (jobs); where things are on the shared path (paths); the node side (entrypoint)."""
