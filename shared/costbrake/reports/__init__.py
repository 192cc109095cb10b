"""Cost reports: what was spent, by whom and on what, where it is heading, in text, JSON and HTML."""
