"""Report rendering: plots, HTML, Markdown, JSON/CSV."""
