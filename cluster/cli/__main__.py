"""``python -m routerbench.cluster.cli``: the ``routerbench`` command."""

import sys

from routerbench.cluster.cli import main

sys.exit(main())
