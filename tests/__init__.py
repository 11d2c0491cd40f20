"""Tests for the submeter integration, its library and the meter simulator."""
