SELECT workspace.claim_sheet(%(sheet)s)
