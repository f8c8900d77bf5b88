-- The paused queues (workers read them at start; later they hear of changes by NOTIFY).
SELECT queue FROM nightcrew.queue_pauses
