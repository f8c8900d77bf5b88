-- nightcrew 0008: a delivery attempt claims its row in one short transaction, sends with no
-- connection held, and records the outcome in another. A claim names its attempt (claim)
-- and lasts until claimed_until: while it lasts no other attempt sends the same delivery;
-- a claim left by an attempt that crashed is taken over once it has expired.

ALTER TABLE nightcrew.deliveries
    ADD COLUMN claim uuid,
    ADD COLUMN claimed_until timestamptz;
