"""routerbench.cluster: the outward-facing parts: the ``routerbench`` command (``cli``), the
published leaderboard and its nightly job (``leaderboard``) and the Ray executor (``ray_*``)."""
