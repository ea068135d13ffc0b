"""The queue: the supervisor, how a run is started (locally or on Slurm), and the client."""
