"""The unified identity: citizens, businesses and their national identifiers."""
