"""What operators see: Prometheus metrics, the JSON access line, logs and tracing."""
