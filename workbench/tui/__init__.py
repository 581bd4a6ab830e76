"""The interactive workbench: a Textual app that builds, boots, watches and debugs the kernel.

`app.KwastApp` composes the panes; each pane is its own module and owns its state. Panes talk
to the app by messages; the app hands them what they need (a machine, a snapshot) by calls.
The machine is worked only through the driver's verbs (`workbench.qemu`), typing included.
"""
