"""Real local servers for the tests, each started once per session on a free port of 127.0.0.1.

Tests share a server, so each one uses its own bucket or folder (``new_bucket`` / ``new_folder``).
"""
