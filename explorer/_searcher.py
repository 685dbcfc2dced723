"""Where the searcher lived before ``explorer.search`` became a package: run folders written then pickled it here."""

from explorer.search.searcher import FAILED_STATUSES, RecordingOptunaSearch  # noqa: F401
