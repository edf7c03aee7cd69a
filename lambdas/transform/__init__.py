"""Firehose transformation of DynamoDB change records into flat JSON Lines (see handler.py)."""
