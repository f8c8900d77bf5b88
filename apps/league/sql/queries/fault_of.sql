SELECT transient_rate, transient_attempts, permanent FROM league.faults
WHERE function = %(function)s
