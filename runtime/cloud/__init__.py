"""The personal-cloud services an app reaches offline: Deta Base (and Drive)."""
