"""Who may pass: paths, route rules, the allow language, keys, passwords, and credentials."""
