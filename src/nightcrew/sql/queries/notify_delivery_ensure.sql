-- One delivery row per (event, channel); a retried notify job finds the existing one.
INSERT INTO nightcrew.deliveries (event_key, job_id, alert_id, channel, target)
VALUES (%(event_key)s, %(job_id)s, %(alert_id)s, %(channel)s, %(target)s)
ON CONFLICT (event_key, channel) DO NOTHING
