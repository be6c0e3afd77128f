"""Identity for every door: passwords, Parse sessions, role membership, master key."""
