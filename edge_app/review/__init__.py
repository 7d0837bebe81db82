"""Labelling in the browser: the sampled frames as a review queue, the /review page and its API."""
