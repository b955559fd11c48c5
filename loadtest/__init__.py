"""Echo Hub's load tester (``echohub-loadtest``): lean websocket clients, scenarios, reports."""
