"""The job lifecycle, one module per step: enqueue, fetch, finish (complete/retry/fail),
heartbeat, rescue and the operator controls (cancel, retry)."""
