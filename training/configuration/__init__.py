"""Family and network configuration: YAML schemas, defaults, shared constants."""
