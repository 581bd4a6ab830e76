"""Scenarios: YAML descriptions of a machine and ordered steps, run headless (`kwast-bench run`,
`pytest scenarios/`). See scenarios/README.md for the format. Steps work the machine only
through the driver's verbs (`workbench.qemu`)."""
