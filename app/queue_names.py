"""The names of the worker's queues, apart from the worker so that whoever queues a job and wakes
the worker need not import the worker (which imports every queue's handlers, and those the
services that queue jobs: an import cycle)."""

INBOX_QUEUE = "inbox"
DELIVERY_QUEUE = "delivery"
# General background work (app.services.jobs queues it, app.federation.jobs runs it).
JOBS_QUEUE = "jobs"
# Where a session finds the function that wakes this instance's worker for JOBS_QUEUE (the
# session factory puts it in every session's `info`), for code that queues jobs holding only a session.
WAKE_JOBS_INFO_KEY = "herold.wake_jobs"
