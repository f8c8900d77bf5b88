-- Demo data: REBAR-12MM suggested to every estimate of the last 30 days holding CONC-C25,
-- used where the estimate holds it too (the seed's "concrete goes with rebar" story).
INSERT INTO estimating.suggestion_offers (project_id, estimate_id, item_id, offered_at, used_at)
SELECT e.project_id, e.estimate_id, r.id, min(u.used_at),
       (SELECT min(x.used_at) FROM estimating.usage AS x
        WHERE x.estimate_key = e.key AND x.item_id = r.id)
FROM estimating.usage AS u
JOIN estimating.estimates AS e ON e.key = u.estimate_key
JOIN estimating.items AS c ON c.id = u.item_id AND c.code = 'CONC-C25'
CROSS JOIN (SELECT id FROM estimating.items WHERE code = 'REBAR-12MM') AS r
WHERE u.used_at > %(now)s::timestamptz - interval '30 days'
GROUP BY e.project_id, e.estimate_id, e.key, r.id
ON CONFLICT (project_id, estimate_id, item_id) DO NOTHING
