"""What an operator runs and watches: health checks, metrics, logs, backups."""
