"""Verbs that do not care where content lives: copy, inspect, tree, ..."""
