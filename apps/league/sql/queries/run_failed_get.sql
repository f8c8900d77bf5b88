SELECT id FROM league.runs WHERE id = %(id)s AND status = 'failed'
