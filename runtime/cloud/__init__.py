"""Local stand-ins for the Deta cloud services a Space app talks to: Base, Drive and their TLS."""
