"""Local development stack: runs costbrake on a laptop without AWS or Docker."""
