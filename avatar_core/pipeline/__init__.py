"""Pipeline plumbing for the orchestration layer: DVC stages and remote, git recording, metric tables.

Used by `tasks/` and `flows/`; DVC is imported inside the functions, so importing avatar_core never
pulls in DVC or Prefect.
"""
