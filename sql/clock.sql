--
-- clock: the deterministic clock
--
-- quantum_flow.now() is real time until set_clock() freezes it; then it
-- moves only when advance_clock() moves it.  The override is a GUC, so
-- ROLLBACK and SET LOCAL behave as for any setting.
--
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SET timezone = 'UTC';

-- Real time by default.
SELECT quantum_flow.now() = now() AS real_time;

-- Freeze at the default instant and move forward.
SELECT quantum_flow.set_clock();
SELECT quantum_flow.now();
SELECT quantum_flow.advance_clock('1500 milliseconds');
SELECT quantum_flow.advance_clock('1 day 2 hours');
SELECT quantum_flow.advance_clock('1 month');
SHOW quantum_flow.clock_override;

-- The clock does not move with real time.
SELECT quantum_flow.now() = quantum_flow.now() AS still;

-- Freeze at a chosen instant, given in another zone.
SELECT quantum_flow.set_clock('2030-06-15 12:00:00+02');

-- ROLLBACK undoes a set_clock() made in the transaction.
SELECT quantum_flow.reset_clock();
BEGIN;
SELECT quantum_flow.set_clock();
SELECT quantum_flow.now() AS frozen_in_transaction;
ROLLBACK;
SELECT quantum_flow.now() = now() AS real_time_after_rollback;

-- SET LOCAL lasts until the end of the transaction.
BEGIN;
SET LOCAL quantum_flow.clock_override = '2025-03-01 08:00:00+00';
SELECT quantum_flow.now() AS local_override;
COMMIT;
SELECT quantum_flow.now() = now() AS real_time_after_commit;

-- Bad literals are refused when set, with a detail.
SET quantum_flow.clock_override = 'not a time';
SET quantum_flow.clock_override = 'now';
SET quantum_flow.clock_override = 'infinity';

-- Advancing needs a frozen clock, and never goes backwards.
SELECT quantum_flow.advance_clock('1 second');
SELECT quantum_flow.set_clock();
SELECT quantum_flow.advance_clock('-1 second');
SELECT quantum_flow.advance_clock(NULL);
SELECT quantum_flow.set_clock(NULL);
SELECT quantum_flow.set_clock('infinity');

-- New rows take their timestamps from the frozen clock.
SELECT quantum_flow.set_clock('2025-02-02 02:02:02+00');
SELECT (quantum_flow.create_workflow('clocked')).created_at;

-- Back to real time.
SELECT quantum_flow.reset_clock();
SELECT quantum_flow.now() = now() AS real_time_again;

-- The stored override carries its offset, so a change of time zone does
-- not move the frozen instant.
SELECT quantum_flow.set_clock('2025-01-01 00:00:00+00');
SHOW quantum_flow.clock_override;
SET timezone = 'America/New_York';
SELECT quantum_flow.now() = '2025-01-01 00:00:00+00' AS same_instant;
SELECT quantum_flow.advance_clock('1 hour') = '2025-01-01 01:00:00+00'
       AS advanced_in_utc;
RESET timezone;
SELECT quantum_flow.reset_clock();
