"""Offline accuracy of deployed artifacts, precision comparison, thresholds (needs [eval])."""
