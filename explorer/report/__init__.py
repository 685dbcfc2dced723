"""HTML reports of search runs (plotly figures drawn from `explorer.analysis` tables)."""

from explorer.report.compare import write_comparison
from explorer.report.page import render_page, write_report

__all__ = ["render_page", "write_comparison", "write_report"]
