"""`inr-gon demo`: the one-command recipes that train, evaluate and draw a small run."""
