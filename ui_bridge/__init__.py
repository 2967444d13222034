"""The AG-UI face: one AG-UI endpoint per registered graph (`POST /agui/{graph}`), for CopilotKit and
other AG-UI clients, and the CopilotKit chat page in `ui_bridge/web/`.

Runs go through the same `RunManager` as the thread/run API, so ownership, one run per thread and
durability are the same on every face; the AG-UI `threadId` is the Citadel thread.
"""
