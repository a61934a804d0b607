"""The simulated world and listeners (see docs/sim.md)."""
