-- 003_age.sql - the age clock (core/ageclock.h): each inference records the store's age clock
-- when it was committed, and retention by age (cache_max_age) compares that, not the wall
-- clock, so a clock step neither deletes fresh rows nor stops old ones from going.
-- received_ms stays the wall clock time of the commit, for display.
-- The clock itself is persisted as the meta row 'age_clock'. Rows stored before this version
-- take their wall clock receive time as their age (the clock starts at the wall clock).
ALTER TABLE inference ADD COLUMN age_ms INTEGER NOT NULL DEFAULT 0;
UPDATE inference SET age_ms = received_ms;
