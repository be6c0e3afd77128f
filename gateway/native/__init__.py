"""Parse-Server-compatible class API under /parse."""
