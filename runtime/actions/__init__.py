"""Space's actions, run locally: scheduled actions on their clock, and App Actions a micro
provides, each sent to its micro where it lives now."""
