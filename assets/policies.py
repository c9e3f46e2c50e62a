"""Retry policies of the asset steps, defined once so every asset module imports the same ones.

`TRAINING_RETRY` (training assets): a training step that fails — a killed or preempted process,
a lost node, a storage outage that outlasted the store's own retries — is retried twice, after
about 5 s and then about 15 s (exponential backoff with ±5 s jitter). The retry re-launches the
same config, so it resumes from the run's last checkpoint instead of starting over (see
training/resume.py). Failures that a retry cannot fix raise `dg.Failure(allow_retries=False)`:
a rejected command line or config (exit code 2), or a run that published nothing.

Whole-run retries (the run worker itself crashed) are the instance's `run_retries` in
dagster.yaml; see docs/operations.md.
"""

import dagster as dg

TRAINING_RETRY = dg.RetryPolicy(
    max_retries=2,
    delay=5,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)
