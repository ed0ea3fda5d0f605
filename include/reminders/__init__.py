"""Reminders: who is reminded of what and when (the policy), and the outbox that delivers them."""
