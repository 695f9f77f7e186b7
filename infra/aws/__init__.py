"""The specs made into AWS resources: the stack (stack.py) wiring the components, and the AWS rules they share.

Imports infra.stackfile and infra.specs; never infra.local or infra.tools."""
