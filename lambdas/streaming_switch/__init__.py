"""The custom resource that turns an existing table's Kinesis streaming destination on and off (see handler.py)."""
