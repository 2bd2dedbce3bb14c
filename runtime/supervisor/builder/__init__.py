"""Space's builder, locally: a micro's virtual environment, node_modules and build."""
