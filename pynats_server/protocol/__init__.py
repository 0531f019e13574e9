"""Sans-IO protocol pieces: the parser, encoders and subject rules. No asyncio in here."""
