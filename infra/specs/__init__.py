"""The config made into what runs: the process specs (topology), the environment contract, the code locations.

Imports infra.stackfile only."""
