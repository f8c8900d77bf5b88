SELECT transient_rate, permanent FROM league.faults WHERE function = %(function)s
