"""One view over many devices: MQTT collector, SQLite store, web page (``edge-app fleet``)."""
