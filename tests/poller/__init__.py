"""The Poller contract (SPEC §2 Poller, §3.1 poller part, §3.5, §3.6, §3.7), one file per concern."""
