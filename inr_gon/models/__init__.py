"""The networks: the SIREN decoder F(coords, z), the GON around it (the gradient-origin step),
the paper's baselines, and coordinate grids with chunked decoding at any resolution."""
