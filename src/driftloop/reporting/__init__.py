"""Rendering drift reports for people: a terminal table and a self-contained HTML page."""

from driftloop.reporting.html import render_html
from driftloop.reporting.terminal import render_terminal

__all__ = ["render_html", "render_terminal"]
