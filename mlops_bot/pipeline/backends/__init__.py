"""Where a step runs besides a local subprocess: each remote kind is a module with `run(job: RemoteStep) -> float`
(the step's duration; StepFailed when it failed, timed out or was cancelled), imported only when a step uses it."""
