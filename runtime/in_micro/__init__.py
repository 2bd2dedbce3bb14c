"""Code that runs inside a micro's process, not the runtime's."""
