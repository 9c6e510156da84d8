"""adapter_config.json: a strict read, PEFT's key table and targeting rules, and the
config against its tensors (AS3xx)."""
