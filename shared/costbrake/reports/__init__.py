"""Cost reports: what was spent, by whom and on what, where it is heading, in text, JSON and HTML."""

from costbrake.reports.html import render_html
from costbrake.reports.inputs import ReportInputs
from costbrake.reports.model import CostReport, build_report
from costbrake.reports.text import render_text

__all__ = ["CostReport", "ReportInputs", "build_report", "render_html", "render_text"]
