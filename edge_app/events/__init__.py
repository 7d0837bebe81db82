"""What the device learns leaves it: a versioned event stream (schema), a durable outbox on disk, the
MQTT output (availability, retained status, Home Assistant discovery) and a JSON-lines file sink."""
