"""One ComponentResource per concern; infra/aws/stack.py wires them together."""
