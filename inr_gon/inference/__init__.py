"""Using a trained run (inr_gon.run.load_run): fitting, sampling, evaluation and meshing."""
