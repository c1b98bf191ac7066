"""The networks: the SIREN decoder F(coords, z), the latent-step engine (origin.py), the GON
around it, the paper's baselines, and coordinate grids with chunked decoding at any resolution."""
