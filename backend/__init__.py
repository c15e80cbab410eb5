"""The backend: discovers emulators, aggregates their health, serves the fleet."""
