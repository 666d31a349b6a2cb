"""What one planned input of ``gfr restore`` goes through, shared by the local engine
(:mod:`gfr_core.tools.restore_cli`) and the Ray engine (:mod:`gfr_core.cluster`)."""

from .job import INPUT, Job, UserError, job_error, load_restorer, restore_clip_job, restore_photo_job, unique_output

__all__ = [
    "INPUT",
    "Job",
    "UserError",
    "job_error",
    "load_restorer",
    "restore_clip_job",
    "restore_photo_job",
    "unique_output",
]
