"""Training: tasks (what a run trains on: batches, evaluation, previews), the step, the loop
and torchrun (the run folder it writes: inr_gon.run)."""
