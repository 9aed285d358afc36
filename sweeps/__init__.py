"""routerbench.sweeps."""
