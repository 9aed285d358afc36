"""The published leaderboard of completed runs.

``rank`` (the table: runs collected, routers ranked, references apart), ``page`` (the web page),
``publish`` (files rendered and published atomically: ``refresh``, ``read_latest``) and
``nightly`` (the nightly job). The names most callers need are importable from here::

    from routerbench.cluster.leaderboard import read_latest, refresh

Each module's main function has the module's name (``rank.rank``, ``page.page``,
``publish.publish``, ``nightly.nightly``); import those from their modules.
"""

from routerbench.cluster.leaderboard.publish import KEEP, page_url, read_latest, refresh
from routerbench.cluster.leaderboard.rank import COLUMNS, Collected, collect

__all__ = ["COLUMNS", "KEEP", "Collected", "collect", "page_url", "read_latest", "refresh"]
