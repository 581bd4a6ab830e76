"""Scenarios: YAML descriptions of a machine and ordered steps, run headless (`kwast-bench run`,
`pytest scenarios/`, the TUI's scenario pane). `model` is the format, `matrix` a file's runs per
combination of its `matrix:` values, `runner` runs them, `steps` does each step. See
scenarios/README.md for the format. Steps work the machine only through the
driver's verbs (`workbench.qemu`)."""
