"""The agent side: the REST API (`api.py`), API tokens (`auth.py`), the API's JSON lists
(`serialize.py`) and the Slack app (`slack/`). The state changes they ask for are in
`handoff.transitions`; nothing here is imported by the core."""
