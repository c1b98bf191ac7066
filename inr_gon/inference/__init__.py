"""Using a trained run: the Run API (load_run), fitting, sampling, evaluation and meshing."""
