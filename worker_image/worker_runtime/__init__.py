"""Runtime helpers shipped in the image: the queue-metrics sidecar and ECS task scale-in protection."""
