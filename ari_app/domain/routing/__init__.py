"""The ACD's routing core: which waiting call goes to which free agent, and why."""
