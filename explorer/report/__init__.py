"""HTML report of a search run (plotly figures drawn from `explorer.analysis` tables)."""

from explorer.report.page import render_page, write_report

__all__ = ["render_page", "write_report"]
