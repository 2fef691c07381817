"""Background work: settlement, voiding, expiry refunds, the audit."""
