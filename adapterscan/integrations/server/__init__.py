"""The registry admission service (`adapterscan serve`): webhooks in, signed verdicts out."""
