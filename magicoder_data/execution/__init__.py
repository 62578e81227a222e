"""Running generated code: a sandbox, and what the pipeline does with it.

`sandbox` runs untrusted Python with its tests (isolated by bubblewrap, one warm fork server per
core); `worker` is the program that runs inside it.
"""
