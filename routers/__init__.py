"""routerbench.routers."""
