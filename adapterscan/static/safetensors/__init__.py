"""The safetensors container: bounded header parser and tensor-data scanner (AS2xx)."""
