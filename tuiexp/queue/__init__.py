"""The queue: the supervisor, how a run is started and stopped, and the client.

- daemon: the supervisor (one per logs directory, detached; `tuiexp daemon serve`)
- executor: local processes or Slurm jobs (slurm: sbatch/squeue/sacct/scancel;
  slurm_job: the job side on the compute node)
- gpu: what the accelerators look like now; preflight: what `tuiexp check` verifies
- client: enqueue, fork, resume, cancel, archive, as the CLI and the UI ask
"""
