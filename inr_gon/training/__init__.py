"""Training: tasks (what a run trains on: batches, evaluation, previews), the step, the loop,
checkpoints, and torchrun."""
