"""routerbench.cluster."""
